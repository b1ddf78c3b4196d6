// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/* Proves the ring-buffer path: a write(2) by the test process on a watched fd becomes a
 * pal_test_event carrying the pid, the tid, a cookie from a map and the written bytes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "palisade.h"
#include "pal_helpers.h"

const volatile __u32 target_tgid = 0;
/* Test knob: submit without waking the reader, as the process sensor does below its threshold. */
const volatile __u32 no_wakeup = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} test_events SEC(".maps");

/* fd -> cookie: only writes to these fds are reported */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} test_cookies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} test_hits SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_write")
int test_sys_enter_write(struct trace_event_raw_sys_enter *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	__u32 fd = (__u32)ctx->args[0];
	__u64 *cookie = bpf_map_lookup_elem(&test_cookies, &fd);
	if (!cookie)
		return 0;
	__u32 zero = 0;
	__u64 *hits = bpf_map_lookup_elem(&test_hits, &zero);
	if (hits)
		(*hits)++;
	struct pal_test_event *e = bpf_ringbuf_reserve(&test_events, sizeof(*e), 0);
	if (!e)
		return 0;
	pal_fill_header(&e->hdr, PAL_EVENT_TEST, sizeof(*e));
	e->cookie = *cookie;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_probe_read_user(e->payload, sizeof(e->payload), (const void *)ctx->args[1]);
	bpf_ringbuf_submit(e, no_wakeup ? BPF_RB_NO_WAKEUP : 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
