// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * Not loaded into the kernel. One global of every shared struct, so that each appears in
 * this object's BTF with its compiled layout; the layout test reads the `layout__*`
 * variables and compares each struct with its C# twin (cf. Cilium's bpf_alignchecker.c).
 * Add a line here for every struct and enum added to bpf/include (the test fails on an enum
 * of the headers that is missing here).
 */
#include "vmlinux.h"
#include "palisade.h"
#include "pal_task.h"
#include "pal_flow.h"

#define PAL_LAYOUT(name) struct name layout__##name
/* Enums shared with C# ([BpfEnum] twins): a global of the type puts it in the BTF. */
#define PAL_LAYOUT_ENUM(name) enum name layout_enum__##name

PAL_LAYOUT(pal_event_header);
PAL_LAYOUT(pal_test_event);
PAL_LAYOUT(pal_proc);
PAL_LAYOUT(pal_exec_event);
PAL_LAYOUT(pal_fork_event);
PAL_LAYOUT(pal_exit_event);
PAL_LAYOUT(pal_pol_slotdef);
PAL_LAYOUT(pal_pol_dim);
PAL_LAYOUT(pal_pol_filter);
PAL_LAYOUT(pal_pol_point);
PAL_LAYOUT(pal_pol_selector);
PAL_LAYOUT(pal_pol_state);
PAL_LAYOUT(pal_pol_scope_key);
PAL_LAYOUT(pal_pol_sysent);
PAL_LAYOUT(pal_pol_strkey);
PAL_LAYOUT(pal_pol_mask);
PAL_LAYOUT(pal_task_creds);
PAL_LAYOUT(pal_pol_counters);
PAL_LAYOUT(pal_pol_sock);
PAL_LAYOUT(pal_pol_value);
PAL_LAYOUT(pal_pol_event);
PAL_LAYOUT_ENUM(pal_event_type);
PAL_LAYOUT_ENUM(pal_test_sizes);
PAL_LAYOUT_ENUM(pal_exec_flags);
PAL_LAYOUT_ENUM(pal_ns);
PAL_LAYOUT_ENUM(pal_exec_sizes);
PAL_LAYOUT_ENUM(pal_stat);
PAL_LAYOUT_ENUM(pal_pol_sizes);
PAL_LAYOUT_ENUM(pal_pol_xkind);
PAL_LAYOUT_ENUM(pal_pol_pslot);
PAL_LAYOUT_ENUM(pal_pol_class);
PAL_LAYOUT_ENUM(pal_pol_op);
PAL_LAYOUT_ENUM(pal_pol_field);
PAL_LAYOUT_ENUM(pal_pol_action_flags);
PAL_LAYOUT_ENUM(pal_pol_action);
PAL_LAYOUT_ENUM(pal_pol_point_flags);
PAL_LAYOUT_ENUM(pal_pol_other_key);
PAL_LAYOUT_ENUM(pal_pol_sock_state_fn);
PAL_LAYOUT_ENUM(pal_pol_skb_output);
PAL_LAYOUT_ENUM(pal_pol_sysent_flags);
PAL_LAYOUT_ENUM(pal_pol_value_flags);
PAL_LAYOUT_ENUM(pal_pol_stat);

char LICENSE[] __attribute__((section("license"), used)) = "Dual BSD/GPL";

/* pal_flow.h: flow records and the socket-owner table (bpf/net) */
PAL_LAYOUT(pal_flow_event);
PAL_LAYOUT(pal_sock_key);
PAL_LAYOUT(pal_sock_owner);
PAL_LAYOUT_ENUM(pal_flow_verdict);
PAL_LAYOUT_ENUM(pal_flow_obs);
PAL_LAYOUT_ENUM(pal_flow_direction);
PAL_LAYOUT_ENUM(pal_flow_report);
PAL_LAYOUT_ENUM(pal_flow_flags);
PAL_LAYOUT_ENUM(pal_flow_policy_match);

/* pal_net.h: endpoints, ipcache, flow aggregation and counters of bpf/net/endpoint.bpf.c */
#include "pal_net.h"
PAL_LAYOUT(pal_endpoint_key);
PAL_LAYOUT(pal_endpoint_info);
PAL_LAYOUT(pal_ipcache_key);
PAL_LAYOUT(pal_ipcache_value);
PAL_LAYOUT(pal_flow_key);
PAL_LAYOUT(pal_flow_state);
PAL_LAYOUT(pal_ct_key);
PAL_LAYOUT(pal_ct_entry);
PAL_LAYOUT_ENUM(pal_identity);
PAL_LAYOUT_ENUM(pal_drop_reason);
PAL_LAYOUT_ENUM(pal_net_sizes);
PAL_LAYOUT_ENUM(pal_net_family);
PAL_LAYOUT_ENUM(pal_endpoint_flags);
PAL_LAYOUT_ENUM(pal_ipcache_flags);
PAL_LAYOUT_ENUM(pal_flow_state_flags);
PAL_LAYOUT_ENUM(pal_net_stat);
PAL_LAYOUT_ENUM(pal_sock_stat);
PAL_LAYOUT_ENUM(pal_ct_flags);
PAL_LAYOUT_ENUM(pal_ct_timeouts);

/* pal_netpol.h: the per-endpoint network policy map */
#include "pal_netpol.h"
PAL_LAYOUT(pal_netpol_key);
PAL_LAYOUT(pal_netpol_value);
PAL_LAYOUT_ENUM(pal_netpol_sizes);
PAL_LAYOUT_ENUM(pal_netpol_dir);
PAL_LAYOUT_ENUM(pal_netpol_flags);
PAL_LAYOUT_ENUM(pal_netpol_mode);

/* pal_lb.h: the service maps of bpf/net/lb.bpf.c (socket-LB) */
#include "pal_lb.h"
PAL_LAYOUT(pal_lb4_key);
PAL_LAYOUT(pal_lb6_key);
PAL_LAYOUT(pal_lb_service);
PAL_LAYOUT(pal_lb4_backend);
PAL_LAYOUT(pal_lb6_backend);
PAL_LAYOUT(pal_lb4_revnat);
PAL_LAYOUT(pal_lb6_revnat);
PAL_LAYOUT(pal_lb4_sock_key);
PAL_LAYOUT(pal_lb6_sock_key);
PAL_LAYOUT(pal_lb_sock_value);
PAL_LAYOUT(pal_lb_affinity_key);
PAL_LAYOUT(pal_lb_affinity_value);
PAL_LAYOUT_ENUM(pal_lb_sizes);
PAL_LAYOUT_ENUM(pal_lb_flags);
PAL_LAYOUT_ENUM(pal_lb_backend_flags);
PAL_LAYOUT_ENUM(pal_lb_stat);
