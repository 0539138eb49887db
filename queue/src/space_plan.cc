#include "space_plan.h"

#include <algorithm>

namespace tally::queue {

SpacePlan plan_space(std::uint64_t cap_bytes, std::optional<FilesystemSpace> fs) {
  SpacePlan plan;
  const std::uint64_t basis = fs ? std::min(cap_bytes, fs->size_bytes) : cap_bytes;
  plan.wal_limit_bytes = std::clamp(basis / 8, kMinWalBytes, kMaxWalBytes);
  plan.effective_cap_bytes = cap_bytes;
  if (!fs) return plan;
  const std::uint64_t reserved = plan.wal_limit_bytes + kFixedOverheadBytes;
  const std::uint64_t fs_cap = fs->size_bytes > reserved ? fs->size_bytes - reserved : 0;
  if (fs_cap < cap_bytes) {
    plan.effective_cap_bytes = fs_cap;
    plan.limited_by_filesystem = true;
  }
  return plan;
}

}  // namespace tally::queue
