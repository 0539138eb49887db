/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Structs shared by cpu_account.bpf.c and userspace. Plain fixed-width types
 * only: the includer provides __u32/__u64 (<linux/types.h>). Userspace
 * static_asserts every size, so a change here that breaks the layout fails
 * the build rather than corrupting readings.
 *
 * How the accounting works (details in cpu_account.bpf.c):
 *   cpus[cpu]                  when the current task was switched in, and
 *                              the CPU's cumulative idle/busy time;
 *   slots[cpu * nslots + i]    a per-CPU direct-mapped cache of cumulative CPU
 *                              time per process, so a context switch costs a
 *                              few plain memory operations, no hash lookup;
 *   procs{key}                 time spilled from evicted slots, and the exit
 *                              record of processes that ended;
 *   execs{key}                 comm and arguments captured at exec, for
 *                              processes that end before userspace sees them;
 *   thread_waits (task storage) the run-queue delay each thread had when it
 *                              was last charged, so that a switch charges
 *                              only the wait added since.
 * Userspace mmaps cpus and slots and reads them without system calls.
 */
#ifndef TALLY_BPF_CPU_ACCOUNT_H
#define TALLY_BPF_CPU_ACCOUNT_H

#define TALLY_COMM_LEN 16
#define TALLY_ARGS_LEN 256

/* One per CPU, exactly one cache line so CPUs never share a line. Written
 * only on its own CPU, with interrupts off (sched_switch, or the sync
 * program run there by IPI). */
struct tally_cpu_state {
  /* rq->clock_task when the current task was switched in (or last
   * synced); 0 until the first event seen on this CPU. */
  __u64 since_ns;
  __u64 idle_ns; /* cumulative time in the idle task */
  __u64 busy_ns; /* cumulative time in any other task */
  /* Updates lost because procs was full (each one loses CPU time or an
   * exit record) - surfaced as dropped_updates. */
  __u64 drops;
  __u64 execs; /* exec events seen; userspace refreshes names when it moves */
  __u64 pad[3];
};

/* A process incarnation: a reused pid never merges two processes because the
 * start time differs. start_ns is the leader's start_boottime. */
struct tally_proc_key {
  __u32 tgid;
  __u32 pad;
  __u64 start_ns;
};

/* One slot of the per-CPU cache: cumulative CPU ns, and run-queue wait ns,
 * of one process on one CPU since the slot was given to it. 32 bytes: two
 * slots per cache line. */
struct tally_slot {
  __u32 tgid;
  /* Incremented each time the slot changes owner, so a reader can tell
   * "same process, more time" from "evicted and taken back since". 32
   * bits: readers compare it one interval apart, and 2^32 evictions of
   * one slot in an interval cannot happen. */
  __u32 gen;
  __u64 start_ns;
  __u64 cpu_ns;
  __u64 wait_ns;
};

#define TALLY_PROC_EXITED 1u
/* The last thread's last switch has been charged: no more time will come. */
#define TALLY_PROC_FINAL 2u

/* procs value. spilled_ns only grows while the process lives. */
struct tally_proc {
  __u64 spilled_ns;      /* CPU time moved here from evicted slots */
  __u64 spilled_wait_ns; /* and their run-queue wait */
  __u64 exit_ns;         /* CLOCK_MONOTONIC of the last thread's exit */
  /* Written last on exit, after comm: a reader that sees EXITED also
   * sees the final comm. */
  __u32 flags;
  __u32 ppid;
  char comm[TALLY_COMM_LEN];
};

/* execs value: what the process looked like right after its last exec. */
struct tally_exec {
  __u64 exec_ns;
  __u32 args_len; /* bytes of args used, NUL-separated like /proc/PID/cmdline */
  __u32 pad;
  char comm[TALLY_COMM_LEN];
  char args[TALLY_ARGS_LEN];
};

/* thread_waits value. */
struct tally_thread_wait {
  __u64 seen_ns; /* sched_info.run_delay already charged */
  __u64 known;   /* 0 until the thread is first seen */
};

#endif /* TALLY_BPF_CPU_ACCOUNT_H */
