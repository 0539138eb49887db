// SPDX-License-Identifier: GPL-2.0
/*
 * Reference points for the cost of tally's sched_switch program (the
 * benchmarks load them beside it and compare run_time_ns / run_cnt):
 *   switch_empty  the floor: a tp_btf program that does nothing;
 *   switch_ktime  the least a time-accounting program must do: read the clock;
 *   switch_hash   the naive design tally avoids: a hash-map update per switch.
 */
#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "../kernel_types.h"

char LICENSE[] SEC("license") = "GPL";

volatile __u64 sink;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} naive_times SEC(".maps");

SEC("tp_btf/sched_switch")
int BPF_PROG(switch_empty, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(switch_ktime, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	sink = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(switch_hash, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 tgid = prev->tgid;
	__u64 now = bpf_ktime_get_ns();
	__u64 *t = bpf_map_lookup_elem(&naive_times, &tgid);

	if (t)
		__sync_fetch_and_add(t, now & 0xff);
	else
		bpf_map_update_elem(&naive_times, &tgid, &now, BPF_ANY);
	return 0;
}
