/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Types that cross the kernel/user boundary, shared by every Palisade BPF object.
 * Each struct here has a C# twin marked [BpfStruct("name")]; the layout test in
 * tests/Palisade.Tests compares both against the BTF of bpf/layout/layout.bpf.c, so a
 * field added here and not in C# fails the build's tests.
 *
 * Rules: fixed-width types only, explicit padding fields, 8-byte alignment of every
 * 64-bit member, no bitfields.
 */
#ifndef PALISADE_H
#define PALISADE_H

/* Event types written to the ring buffers; the first field of every record. */
enum pal_event_type {
	PAL_EVENT_INVALID = 0,
	PAL_EVENT_TEST = 1, /* emitted only by test programs */
};

/* Header at the start of every ring-buffer record. */
struct pal_event_header {
	__u32 type;       /* enum pal_event_type */
	__u32 size;       /* bytes of the whole record, header included */
	__u64 ktime_ns;   /* bpf_ktime_get_boot_ns() when the event happened */
	__u32 pid;        /* thread-group id as the root pid namespace sees it */
	__u32 tid;        /* thread id as the root pid namespace sees it */
	__u64 cgroup_id;  /* cgroup v2 id of the task */
};

/* Record emitted by the test programs that prove the ring-buffer path end to end. */
#define PAL_TEST_PAYLOAD_LEN 32
struct pal_test_event {
	struct pal_event_header hdr;
	__u64 cookie;                       /* value the test wrote to a map beforehand */
	char comm[16];                      /* task comm */
	char payload[PAL_TEST_PAYLOAD_LEN]; /* bytes read from user memory */
};

#endif /* PALISADE_H */
