/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/* Small helpers shared by Palisade BPF programs. */
#ifndef PAL_HELPERS_H
#define PAL_HELPERS_H

#include <bpf/bpf_helpers.h>

/* tc return codes are #defines in uapi headers, which vmlinux.h does not carry. */
#ifndef TC_ACT_OK
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#endif

#ifndef SIGKILL
#define SIGKILL 9
#endif

static __always_inline void pal_fill_header(struct pal_event_header *hdr, __u32 type, __u32 size)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	hdr->type = type;
	hdr->size = size;
	hdr->ktime_ns = bpf_ktime_get_boot_ns();
	hdr->pid = pid_tgid >> 32;
	hdr->tid = (__u32)pid_tgid;
	hdr->cgroup_id = bpf_get_current_cgroup_id();
}

/* Bumps entry `index` of a per-CPU array of __u64 counters. */
#define pal_count(map, index)                                         \
	({                                                            \
		__u32 __key = (index);                                \
		__u64 *__count = bpf_map_lookup_elem(map, &__key);    \
		if (__count)                                          \
			(*__count)++;                                 \
	})

#endif /* PAL_HELPERS_H */
