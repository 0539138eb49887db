/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The few kernel types and fields tally's BPF programs read.
 *
 * Instead of a multi-megabyte generated vmlinux.h, this header declares only
 * what we touch, marked preserve_access_index: clang records each field access
 * as a CO-RE relocation and libbpf patches the real offsets from the running
 * kernel's BTF at load time. The build therefore never needs the build
 * machine's kernel (a container build without /sys/kernel/btf works).
 * Field names must match the kernel's; their order and the absence of other
 * fields do not matter.
 */
#ifndef TALLY_BPF_KERNEL_TYPES_H
#define TALLY_BPF_KERNEL_TYPES_H

#include <linux/types.h>

typedef struct {
  int counter;
} atomic_t;

struct signal_struct {
  atomic_t live; /* threads not yet in do_exit(); 0 for the last one */
} __attribute__((preserve_access_index));

struct mm_struct {
  unsigned long arg_start;
  unsigned long arg_end;
} __attribute__((preserve_access_index));

/* exec_start is the scheduler's task clock (rq->clock_task) when the task's
 * runtime was last brought up to date (update_curr()). That clock stops
 * while the CPU handles interrupts (CONFIG_IRQ_TIME_ACCOUNTING) and while
 * the hypervisor runs someone else (steal time,
 * CONFIG_PARAVIRT_TIME_ACCOUNTING): it is the clock the kernel charges
 * tasks with, so deltas of it equal the kernel's own runtime accounting. */
struct sched_entity {
  __u64 exec_start;
} __attribute__((preserve_access_index));

/* Scheduler accounting per thread (CONFIG_SCHED_INFO): run_delay is the
 * total time it spent runnable on a run queue, waiting for a CPU, added up
 * when it gets one. The same number is /proc/PID/task/TID/schedstat's
 * second field. */
struct sched_info {
  unsigned long long run_delay;
} __attribute__((preserve_access_index));

struct task_struct {
  unsigned int __state; /* TASK_DEAD at a dying task's last switch */
  unsigned int flags;
  struct sched_entity se;
  struct sched_info sched_info;
  __u64 start_time;     /* CLOCK_MONOTONIC at fork, ns */
  int pid;              /* thread id */
  int tgid;             /* process id */
  __u64 start_boottime; /* CLOCK_BOOTTIME at fork, ns; copied to the new leader by de_thread() */
  struct task_struct* group_leader;
  struct task_struct* real_parent;
  struct mm_struct* mm;
  struct signal_struct* signal;
  char comm[16];
} __attribute__((preserve_access_index));

/* Before 5.14 the field was `long state`. */
struct task_struct___old {
  long state;
} __attribute__((preserve_access_index));

#define TALLY_TASK_DEAD 0x80

struct linux_binprm;

#endif /* TALLY_BPF_KERNEL_TYPES_H */
