// RAII owner of an mmap()ed region.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <utility>

#include "tally/result.h"

namespace tally::accounting {

class MappedRegion {
 public:
  MappedRegion() = default;
  // Maps `length` bytes of fd read-only and shared (a BPF_F_MMAPABLE map).
  static Result<MappedRegion> map_readonly(int fd, std::size_t length, const char* what) {
    void* addr = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, 0);
    if (addr == MAP_FAILED) return errno_error(std::string("mmap ") + what);
    return MappedRegion(addr, length);
  }
  ~MappedRegion() {
    if (addr_) ::munmap(addr_, length_);
  }
  MappedRegion(MappedRegion&& o) noexcept
      : addr_(std::exchange(o.addr_, nullptr)), length_(std::exchange(o.length_, 0)) {}
  MappedRegion& operator=(MappedRegion&& o) noexcept {
    if (this != &o) {
      if (addr_) ::munmap(addr_, length_);
      addr_ = std::exchange(o.addr_, nullptr);
      length_ = std::exchange(o.length_, 0);
    }
    return *this;
  }
  MappedRegion(const MappedRegion&) = delete;
  MappedRegion& operator=(const MappedRegion&) = delete;

  template <typename T>
  const volatile T* as() const {
    return static_cast<const volatile T*>(addr_);
  }
  std::size_t length() const { return length_; }

 private:
  MappedRegion(void* addr, std::size_t length) : addr_(addr), length_(length) {}
  void* addr_ = nullptr;
  std::size_t length_ = 0;
};

}  // namespace tally::accounting
