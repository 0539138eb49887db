// SPDX-License-Identifier: GPL-2.0
/*
 * tally's kernel side: CPU time per process, counted at every context switch.
 *
 * Cost is the design constraint: sched_switch fires hundreds of thousands of
 * times per second on a busy host, so the switch path does a few plain memory
 * operations on per-CPU data and no hash lookup, lock or allocation:
 *   1. now - cpus[cpu].since_ns is the time the outgoing task ran;
 *   2. it is added to the outgoing process's slot in this CPU's direct-mapped
 *      slot cache (index = tgid & (nslots - 1)); a slot owned by another
 *      process is evicted ("spilled") into the procs hash - the only map
 *      update, and rare when nslots exceeds the processes active per CPU;
 *   3. now becomes cpus[cpu].since_ns.
 * "now" is the scheduler's task clock (rq->clock_task), read from the task
 * that __schedule() has just brought up to date: prev->se.exec_start, or
 * next->se.exec_start when prev is the idle task (which has no update_curr).
 * It is the clock the kernel charges tasks with, so tally's totals equal the
 * kernel's (schedstat, getrusage): steal time and, where the kernel accounts
 * it, interrupt time are not charged to whoever happened to be on the CPU.
 * It is also cheaper than bpf_ktime_get_ns(), and, unlike the runqueues
 * per-CPU symbol, needs no CONFIG_KALLSYMS_ALL.
 * Time is charged to the thread group, so threads add up into their process,
 * and is keyed by (tgid, leader start time), so a reused pid is a new process.
 * Every switch-out is charged whatever the outgoing task's state: filtering
 * on prev_state undercounts tasks that block.
 * The same switch charges the outgoing thread's run-queue wait (time it was
 * runnable but had no CPU), read from the kernel's own sched_info.run_delay
 * rather than timed from wakeup events, so it costs one task-storage lookup
 * and no hash map, and equals what /proc/PID/schedstat reports.
 *
 * A task that never leaves its CPU would be charged only when it finally
 * does. So before each read, userspace runs tally_sync on every CPU
 * (BPF_PROG_TEST_RUN with BPF_F_TEST_RUN_ON_CPU, an IPI): it charges the
 * current task's time so far, exactly as a switch would, and every interval
 * shows it. Userspace then reads procs, then slots, then cpus.
 *
 * Each tracepoint has a tp_btf program (direct, cheaper field loads) and a
 * raw_tp twin (BPF_CORE_READ) sharing one handler; userspace loads one set,
 * preferring tp_btf when the kernel supports it.
 */
#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "kernel_types.h"
#include "cpu_account.h"

char LICENSE[] SEC("license") = "GPL";

/* Slots per CPU, a power of two; set by userspace before load. */
const volatile __u32 nslots = 1024;
/* CLOCK_MONOTONIC at load, set by userspace: a thread started after it has
 * all its run-queue wait counted, an older one only the wait from its first
 * switch seen on. */
const volatile __u64 load_mono_ns = 0;
/* Charge run-queue wait ([bpf] run_queue_wait); the verifier drops the code
 * when it is off. */
const volatile __u32 count_wait = 1;

/* Keeps the compiler from reordering the stores that readers check. */
#define compiler_barrier() asm volatile("" ::: "memory")

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1); /* userspace: number of possible CPUs */
	__type(key, __u32);
	__type(value, struct tally_cpu_state);
} cpus SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1); /* userspace: possible CPUs * nslots */
	__type(key, __u32);
	__type(value, struct tally_slot);
} slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384); /* userspace: from configuration */
	__type(key, struct tally_proc_key);
	__type(value, struct tally_proc);
} procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096); /* userspace: from configuration */
	__type(key, struct tally_proc_key);
	__type(value, struct tally_exec);
} execs SEC(".maps");

/* Task-local, so finding a thread's entry is a pointer walk, not a hash
 * lookup; the kernel frees it when the thread ends. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tally_thread_wait);
} thread_waits SEC(".maps");

/* struct tally_exec is too big for the 512-byte BPF stack budget we share
 * with the helpers, so it is built here. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tally_exec);
} exec_scratch SEC(".maps");

static __always_inline struct tally_cpu_state *this_cpu_state(__u32 *cpu)
{
	*cpu = bpf_get_smp_processor_id();
	return bpf_map_lookup_elem(&cpus, cpu);
}

/* procs entry for key, created if missing; NULL (and a counted drop) when the
 * map is full. Two CPUs may race to create it: NOEXIST makes one of them lose
 * with -EEXIST, and its second lookup finds the winner's entry. */
static __always_inline struct tally_proc *proc_entry(const struct tally_proc_key *key,
						     struct tally_cpu_state *cs)
{
	struct tally_proc *p = bpf_map_lookup_elem(&procs, key);
	if (p)
		return p;
	struct tally_proc zero = {};
	bpf_map_update_elem(&procs, key, &zero, BPF_NOEXIST);
	p = bpf_map_lookup_elem(&procs, key);
	if (!p)
		__sync_fetch_and_add(&cs->drops, 1);
	return p;
}

/* Moves an evicted slot's time into procs. Slow path, out of line so the
 * switch path stays small. */
static __noinline void spill(__u32 tgid, __u64 start_ns, __u64 cpu_ns, __u64 wait_ns,
			     struct tally_cpu_state *cs)
{
	struct tally_proc_key key = { .tgid = tgid, .start_ns = start_ns };
	struct tally_proc *p;

	if (!cs)
		return;
	p = proc_entry(&key, cs);
	if (!p)
		return;
	__sync_fetch_and_add(&p->spilled_ns, cpu_ns);
	if (wait_ns)
		__sync_fetch_and_add(&p->spilled_wait_ns, wait_ns);
}

static __always_inline void charge(__u32 cpu, __u32 tgid, __u64 start_ns, __u64 delta,
				   __u64 wait, struct tally_cpu_state *cs)
{
	__u32 idx = cpu * nslots + (tgid & (nslots - 1));
	struct tally_slot *s = bpf_map_lookup_elem(&slots, &idx);

	if (!s)
		return;
	if (s->tgid == tgid && s->start_ns == start_ns) {
		s->cpu_ns += delta;
		s->wait_ns += wait;
		return;
	}
	if (s->tgid && (s->cpu_ns || s->wait_ns))
		spill(s->tgid, s->start_ns, s->cpu_ns, s->wait_ns, cs);
	/* Readers treat tgid 0 as "being rewritten" and compare tgid, start_ns
	 * and gen before and after reading the counts (x86 keeps store order). */
	s->tgid = 0;
	compiler_barrier();
	s->start_ns = start_ns;
	s->cpu_ns = delta;
	s->wait_ns = wait;
	s->gen++;
	compiler_barrier();
	s->tgid = tgid;
}

/* Run-queue wait the thread added since it was last charged. The kernel adds
 * a wait to run_delay when the wait ends (the thread gets a CPU), so the
 * switch that takes the thread off again sees it; charging the difference
 * there puts every wait into the interval it ended in, and a thread's last
 * wait is charged at its last switch, before it exits. tp_btf only: task
 * storage needs the BTF task pointer. */
static __always_inline __u64 wait_added(struct task_struct *t)
{
	struct tally_thread_wait *w;
	__u64 delay;

	if (!bpf_core_field_exists(t->sched_info))
		return 0;
	delay = t->sched_info.run_delay;
	w = bpf_task_storage_get(&thread_waits, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!w)
		return 0;
	if (!w->known) {
		w->known = 1;
		w->seen_ns = t->start_time >= load_mono_ns ? 0 : delay;
	}
	if (delay <= w->seen_ns)
		return 0;
	__u64 added = delay - w->seen_ns;
	w->seen_ns = delay;
	return added;
}

/* Charges the task leaving the CPU (or, from tally_sync, still on it) for
 * its time since cpus[cpu].since_ns; now is the task clock. Runs with
 * interrupts off on its own CPU, so nothing else writes this CPU's state
 * meanwhile. */
static __always_inline void account(__u32 pid, __u32 tgid, __u64 start_ns, __u64 now,
				    __u64 wait)
{
	__u32 cpu;
	struct tally_cpu_state *cs = this_cpu_state(&cpu);

	if (!cs)
		return;
	if (cs->since_ns && now > cs->since_ns) {
		__u64 delta = now - cs->since_ns;
		/* Every CPU's idle task has pid 0: it is never a process. */
		if (pid == 0) {
			cs->idle_ns += delta;
		} else {
			cs->busy_ns += delta;
			charge(cpu, tgid, start_ns, delta, wait, cs);
		}
	}
	cs->since_ns = now;
}

/* A task's state at its switch-out, on kernels before and after 5.14. */
static __always_inline unsigned long task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___old *)t, state);
}

/* The process's last thread has just been charged for its last run (the
 * dead task's final switch): mark the exit record, so that userspace reports
 * the exit with this time in it, not without. Exits are rare next to
 * switches, so the hash lookup here costs nothing measurable. */
static __noinline void mark_final(struct task_struct *task)
{
	struct tally_proc_key key = {};
	struct tally_proc *p;

	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return;
	key.tgid = BPF_CORE_READ(task, tgid);
	key.start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	p = bpf_map_lookup_elem(&procs, &key);
	/* The same task set EXITED earlier in do_exit(), and nothing else
	 * writes flags: a plain store. The slot was charged just before. */
	compiler_barrier();
	if (p)
		p->flags |= TALLY_PROC_FINAL;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(tally_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 pid = prev->pid;
	__u64 now = pid ? prev->se.exec_start : next->se.exec_start;

	account(pid, prev->tgid, prev->group_leader->start_boottime, now,
		pid && count_wait ? wait_added(prev) : 0);
	if (pid && task_state(prev) == TALLY_TASK_DEAD)
		mark_final(prev);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(tally_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 pid = BPF_CORE_READ(prev, pid);
	__u64 now = pid ? BPF_CORE_READ(prev, se.exec_start) : BPF_CORE_READ(next, se.exec_start);

	/* No wait here: see wait_added(). */
	account(pid, BPF_CORE_READ(prev, tgid), BPF_CORE_READ(prev, group_leader, start_boottime),
		now, 0);
	if (pid && task_state(prev) == TALLY_TASK_DEAD)
		mark_final(prev);
	return 0;
}

/* Never attached: userspace runs it on each CPU before reading (see top).
 * The current task's exec_start is at most a tick old; the rest of its time
 * is charged at its next switch or sync. An idle CPU has nothing to charge.
 * Its run-queue wait is charged at its next switch: this program is loaded
 * in both modes, and task storage needs tp_btf. */
SEC("raw_tp")
int tally_sync(void *ctx)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	__u32 pid = cur->pid;

	if (pid)
		account(pid, cur->tgid, cur->group_leader->start_boottime, cur->se.exec_start, 0);
	return 0;
}

/* The last thread of a process leaves do_exit(): record the exit so userspace
 * reports the process once, with its final time, then deletes the entry.
 * signal->live is decremented before this tracepoint fires, on every kernel
 * version (newer kernels also pass it as group_dead). The mm is already gone
 * here, which is why arguments are captured at exec instead. */
static __always_inline void on_exit(struct task_struct *task)
{
	__u32 cpu;
	struct tally_cpu_state *cs;
	struct tally_proc_key key = {};
	struct tally_proc *p;

	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return;
	cs = this_cpu_state(&cpu);
	if (!cs)
		return;
	key.tgid = BPF_CORE_READ(task, tgid);
	key.start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	p = proc_entry(&key, cs);
	if (!p)
		return;
	p->exit_ns = bpf_ktime_get_ns();
	p->ppid = BPF_CORE_READ(task, real_parent, tgid);
	bpf_core_read_str(p->comm, sizeof(p->comm), &task->comm);
	compiler_barrier();
	p->flags |= TALLY_PROC_EXITED;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(tally_exit_btf, struct task_struct *task)
{
	on_exit(task);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(tally_exit_raw, struct task_struct *task)
{
	on_exit(task);
	return 0;
}

/* A new program image: comm changed, and the arguments are in the new mm
 * (copied there by the exec itself, so the pages are present). A name frozen
 * at first sight would go stale here; bpf_get_current_comm() in the switch
 * hook would name the wrong task. */
static __always_inline void on_exec(struct task_struct *task)
{
	__u32 cpu, zero = 0;
	struct tally_cpu_state *cs = this_cpu_state(&cpu);
	struct tally_exec *e = bpf_map_lookup_elem(&exec_scratch, &zero);
	struct tally_proc_key key = {};
	unsigned long arg_start, arg_end;
	__u64 len;

	if (!cs || !e)
		return;
	key.tgid = BPF_CORE_READ(task, tgid);
	key.start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	e->exec_ns = bpf_ktime_get_ns();
	bpf_core_read_str(e->comm, sizeof(e->comm), &task->comm);
	arg_start = BPF_CORE_READ(task, mm, arg_start);
	arg_end = BPF_CORE_READ(task, mm, arg_end);
	len = arg_end > arg_start ? arg_end - arg_start : 0;
	if (len > TALLY_ARGS_LEN)
		len = TALLY_ARGS_LEN;
	e->args_len = 0;
	if (len > 0 && bpf_probe_read_user(e->args, len, (const void *)arg_start) == 0)
		e->args_len = len;
	bpf_map_update_elem(&execs, &key, e, BPF_ANY);
	__sync_fetch_and_add(&cs->execs, 1);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tally_exec_btf, struct task_struct *task)
{
	on_exec(task);
	return 0;
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(tally_exec_raw, struct task_struct *task)
{
	on_exec(task);
	return 0;
}
