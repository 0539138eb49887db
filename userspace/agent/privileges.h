// Least privilege for the steady state. tallyd needs root (or a long list of
// capabilities) to load and attach its BPF programs, bind its sockets and
// chown the control socket; once that is done, reading the kernel maps and
// /proc needs far less. drop_privileges() keeps only that, for the process
// and anything it could ever execute, then forbids gaining privileges back
// and confines tallyd to the system calls its steady state makes.
//
// Capabilities and seccomp filters are per thread: this must run while
// tallyd is still one thread, before the store and sink threads start
// (threads created later inherit what the creating thread has).
#pragma once

#include <string>
#include <vector>

namespace tally::agent {

struct PrivilegeNeeds {
  // The BPF backend reads its maps with bpf(2), which needs CAP_BPF (or
  // CAP_SYS_ADMIN on kernels before 5.8) when unprivileged BPF is off.
  bool bpf_maps = true;
};

// What was done, for the log and `tally status`.
struct PrivilegeReport {
  std::vector<std::string> kept;  // capability names still effective
  bool bounding_set_reduced = false;
  bool no_new_privs = false;
  std::size_t syscalls_allowed = 0;  // 0: no seccomp filter
  // Steps that failed, each with its reason; tallyd runs on regardless
  // (with more privilege than it needs, which the log says).
  std::vector<std::string> problems;

  std::string summary() const;
};

PrivilegeReport drop_privileges(const PrivilegeNeeds& needs);

// The system calls the seccomp filter allows (names; those unknown to this
// architecture are skipped).
const std::vector<const char*>& steady_state_syscalls();

}  // namespace tally::agent
