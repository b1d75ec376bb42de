#include "ovsdb/json_framer.h"

namespace nld::ovsdb {

JsonFramer::JsonFramer(std::size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

void JsonFramer::reset() {
  buf_.clear();
  depth_ = 0;
  in_string_ = false;
  escape_ = false;
  error_ = Status::kOk;
}

JsonFramer::Status JsonFramer::feed(std::string_view bytes, std::vector<std::string>& out) {
  if (error_ != Status::kOk) return error_;
  for (char c : bytes) {
    if (depth_ == 0) {
      // Between messages: only whitespace, or the start of the next object/array.
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
      if (c != '{' && c != '[') {
        error_ = Status::kSyntax;
        return error_;
      }
      buf_.push_back(c);
      depth_ = 1;
      continue;
    }
    buf_.push_back(c);
    if (buf_.size() > max_message_bytes_) {
      error_ = Status::kTooLarge;
      buf_.clear();
      return error_;
    }
    if (in_string_) {
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string_ = true;
        break;
      case '{':
      case '[':
        ++depth_;
        break;
      case '}':
      case ']':
        if (--depth_ == 0) {
          out.push_back(std::move(buf_));
          buf_.clear();
        }
        break;
      default:
        break;
    }
  }
  return Status::kOk;
}

}  // namespace nld::ovsdb
