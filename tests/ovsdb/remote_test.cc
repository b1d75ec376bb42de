#include "ovsdb/remote.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "ovsdb/client.h"

namespace nld::ovsdb {
namespace {

TEST(Remote, ParsesKinds) {
  auto rs = parseRemotes(
      "unix:/run/ovn/ovnnb_db.sock,tcp:10.0.0.1:6641,ssl:[fd00::1]:6641,tcp:fd00::2:6641");
  ASSERT_EQ(rs.size(), 4u);
  EXPECT_EQ(rs[0].kind, Remote::Kind::kUnix);
  EXPECT_EQ(rs[0].path, "/run/ovn/ovnnb_db.sock");
  EXPECT_EQ(rs[1].kind, Remote::Kind::kTcp);
  EXPECT_EQ(rs[1].host, "10.0.0.1");
  EXPECT_EQ(rs[1].port, 6641);
  EXPECT_EQ(rs[2].kind, Remote::Kind::kSsl);
  EXPECT_EQ(rs[2].host, "fd00::1");
  EXPECT_EQ(rs[2].toString(), "ssl:[fd00::1]:6641");
  EXPECT_EQ(rs[3].host, "fd00::2");
}

TEST(Remote, RejectsBadInput) {
  for (const char* bad :
       {"", "foo", "tcp:", "tcp:1.2.3.4", "tcp:1.2.3.4:0", "tcp:1.2.3.4:70000",
        "tcp:host.example:6641", "unix:", "tcp:1.2.3.4:66x", "unix:/a,,unix:/b"}) {
    EXPECT_THROW(parseRemotes(bad), std::invalid_argument) << bad;
  }
}

TEST(Backoff, DoublesUpToCap) {
  Backoff b;
  EXPECT_EQ(b.next().count(), 1000);
  EXPECT_EQ(b.next().count(), 2000);
  EXPECT_EQ(b.next().count(), 4000);
  EXPECT_EQ(b.next().count(), 8000);
  EXPECT_EQ(b.next().count(), 8000);
  b.reset();
  EXPECT_EQ(b.next().count(), 1000);
}

}  // namespace
}  // namespace nld::ovsdb
