#pragma once
// A move-only callable with room for its state inside the object: what the miss path stores per
// query (the transport's "send the answer here" closure).
//
// Why not std::function: libstdc++'s std::function keeps a callable inline only when it is
// trivially copyable and at most 16 bytes; anything else (a lambda holding a weak_ptr, or a
// peer address) costs a heap allocation and a free per query, and std::function also demands
// copyable state. C++23's std::move_only_function would do, but this is C++20. Callables that
// do not fit in `Inline` bytes (or may throw when moved) are kept on the heap, so any callable
// works; the inline case is the one the hot path is sized for.
#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace nld {

template <typename Signature, size_t Inline = 48>
class UniqueFunction;

template <typename R, typename... Args, size_t Inline>
class UniqueFunction<R(Args...), Inline> {
 public:
  UniqueFunction() noexcept = default;
  UniqueFunction(std::nullptr_t) noexcept {}  // NOLINT(google-explicit-constructor)

  template <typename F, typename D = std::decay_t<F>,
            typename = std::enable_if_t<!std::is_same_v<D, UniqueFunction> &&
                                        std::is_invocable_r_v<R, D&, Args...>>>
  UniqueFunction(F&& f) {  // NOLINT(google-explicit-constructor): like std::function
    if constexpr (kFitsInline<D>) {
      ::new (static_cast<void*>(buf_)) D(std::forward<F>(f));
      ops_ = &kInlineOps<D>;
    } else {
      *reinterpret_cast<D**>(buf_) = new D(std::forward<F>(f));
      ops_ = &kHeapOps<D>;
    }
  }

  UniqueFunction(UniqueFunction&& o) noexcept { moveFrom(o); }
  UniqueFunction& operator=(UniqueFunction&& o) noexcept {
    if (this != &o) {
      reset();
      moveFrom(o);
    }
    return *this;
  }
  UniqueFunction& operator=(std::nullptr_t) noexcept {
    reset();
    return *this;
  }
  UniqueFunction(const UniqueFunction&) = delete;
  UniqueFunction& operator=(const UniqueFunction&) = delete;
  ~UniqueFunction() { reset(); }

  explicit operator bool() const noexcept { return ops_ != nullptr; }

  /// Calls the stored callable (which must be there, as with std::function minus the throw).
  R operator()(Args... args) const {
    return ops_->call(const_cast<unsigned char*>(buf_), std::forward<Args>(args)...);
  }

 private:
  struct Ops {
    R (*call)(unsigned char*, Args&&...);
    void (*move)(unsigned char* to, unsigned char* from) noexcept;  // move-construct, destroy from
    void (*destroy)(unsigned char*) noexcept;
  };

  template <typename D>
  static constexpr bool kFitsInline =
      sizeof(D) <= Inline &&
      alignof(D) <= alignof(std::max_align_t) && std::is_nothrow_move_constructible_v<D>;

  template <typename D>
  static constexpr Ops kInlineOps{
      [](unsigned char* p, Args&&... a) -> R {
        return (*std::launder(reinterpret_cast<D*>(p)))(std::forward<Args>(a)...);
      },
      [](unsigned char* to, unsigned char* from) noexcept {
        D* src = std::launder(reinterpret_cast<D*>(from));
        ::new (static_cast<void*>(to)) D(std::move(*src));
        src->~D();
      },
      [](unsigned char* p) noexcept { std::launder(reinterpret_cast<D*>(p))->~D(); }};

  template <typename D>
  static constexpr Ops kHeapOps{
      [](unsigned char* p, Args&&... a) -> R {
        return (**reinterpret_cast<D**>(p))(std::forward<Args>(a)...);
      },
      [](unsigned char* to, unsigned char* from) noexcept {
        *reinterpret_cast<D**>(to) = *reinterpret_cast<D**>(from);
      },
      [](unsigned char* p) noexcept { delete *reinterpret_cast<D**>(p); }};

  void moveFrom(UniqueFunction& o) noexcept {
    if (o.ops_ == nullptr) return;
    o.ops_->move(buf_, o.buf_);
    ops_ = o.ops_;
    o.ops_ = nullptr;
  }
  void reset() noexcept {
    if (ops_ == nullptr) return;
    ops_->destroy(buf_);
    ops_ = nullptr;
  }

  static_assert(Inline >= sizeof(void*), "room for the heap pointer at least");
  alignas(std::max_align_t) unsigned char buf_[Inline];
  const Ops* ops_ = nullptr;
};

}  // namespace nld
