// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
//
// ML Defender XDP sniffer: parses Ethernet (up to two VLAN tags), IPv4/IPv6 (extension
// headers skipped) and TCP/UDP/ICMP/ICMPv6 in the kernel, and hands userspace one compact
// `struct mld_record` per IP packet through a ring buffer. DNS packets (UDP port 53 either
// way) carry the first bytes of their payload for query-name entropy, and so do TCP packets
// with a payload to a port in `HEAD_PORTS` (the web ports userspace configures) for the
// web-attack rule.
//
// It never drops, redirects or alters traffic: every packet gets XDP_PASS. Every packet is
// counted exactly once in `COUNTERS` (per CPU): recorded, or not recorded and why, the ring
// being full included. Userspace (sniffer/src/xdp.rs) mirrors these layouts; change both
// together.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MLD_HEAD_LEN 248
#define MAX_VLANS 2
#define MAX_EXT_HEADERS 6

// Outcomes; indices into COUNTERS.
enum {
    C_RECORDED = 0,   // record written to the ring
    C_RING_FULL = 1,  // ring buffer full: the record was lost (userspace too slow)
    C_NOT_IP = 2,     // ARP, LLDP, ... : no flow to account
    C_TRUNCATED = 3,  // headers claim more bytes than the frame has
    C_MALFORMED = 4,  // impossible header values (IHL < 5, TCP offset < 5, ...)
    C_UNSUPPORTED = 5,// too many VLAN tags or IPv6 extension headers
    C_BYTES = 6,      // frame bytes seen (all outcomes)
    C_MAX = 7,
};

struct mld_record {
    __u64 ts_ns;        // bpf_ktime_get_ns(): CLOCK_MONOTONIC
    __u8 src[16];       // IPv4 in the first 4 bytes
    __u8 dst[16];
    __u16 src_port;     // host byte order; 0 without ports
    __u16 dst_port;
    __u16 ip_len;       // IPv4 total length, or IPv6 payload length + 40
    __u16 ip_header_len;
    __u16 l4_header_len;
    __u16 payload_len;  // L4 payload length by the headers
    __u16 tcp_window;
    __u8 proto;
    __u8 tcp_flags;
    __u8 family;        // 4 or 6
    __u8 head_len;      // bytes valid in `head` (head records only)
    __u16 frame_len;
    __u32 ifindex;
    __u32 _pad;
};

_Static_assert(sizeof(struct mld_record) == 72, "userspace expects 72-byte records");
_Static_assert(__builtin_offsetof(struct mld_record, src_port) == 40, "layout");
_Static_assert(__builtin_offsetof(struct mld_record, proto) == 54, "layout");
_Static_assert(__builtin_offsetof(struct mld_record, ifindex) == 60, "layout");

struct mld_head_record {
    struct mld_record r;
    __u8 head[MLD_HEAD_LEN];
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 8 << 20); // userspace may resize at load time
} RECORDS SEC(".maps");

// TCP service ports whose payload heads are copied, to and from them (value unused).
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, __u16);
    __type(value, __u8);
} HEAD_PORTS SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, C_MAX);
    __type(key, __u32);
    __type(value, __u64);
} COUNTERS SEC(".maps");

static __always_inline void count(__u32 which, __u64 n) {
    __u64 *v = bpf_map_lookup_elem(&COUNTERS, &which);
    if (v)
        *v += n;
}

static __always_inline int done(__u32 which) {
    count(which, 1);
    return XDP_PASS;
}

struct vlan_hdr {
    __be16 tci;
    __be16 proto;
};

SEC("xdp")
int mld_xdp_sniffer(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    __u64 frame_len = (__u64)(end - data);
    count(C_BYTES, frame_len);

    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end)
        return done(C_TRUNCATED);
    __u16 proto = bpf_ntohs(eth->h_proto);
    __u32 off = sizeof(*eth);

#pragma unroll
    for (int i = 0; i < MAX_VLANS; i++) {
        if (proto != ETH_P_8021Q && proto != ETH_P_8021AD && proto != 0x9100)
            break;
        struct vlan_hdr *vh = data + off;
        if ((void *)(vh + 1) > end)
            return done(C_TRUNCATED);
        proto = bpf_ntohs(vh->proto);
        off += sizeof(*vh);
    }
    if (proto == ETH_P_8021Q || proto == ETH_P_8021AD || proto == 0x9100)
        return done(C_UNSUPPORTED);

    struct mld_record rec = {};
    __u8 l4 = 0;
    __u32 l4_off = 0;
    int later_fragment = 0;
    __u32 ip_end = 0; // offset where the IP packet ends per its header

    if (proto == ETH_P_IP) {
        __u8 *ip = data + off;
        if ((void *)(ip + 20) > end)
            return done(C_TRUNCATED);
        __u8 ihl = (ip[0] & 0x0f) * 4;
        if ((ip[0] >> 4) != 4 || ihl < 20)
            return done(C_MALFORMED);
        __u16 tot = ((__u16)ip[2] << 8) | ip[3];
        if (tot < ihl)
            return done(C_MALFORMED);
        __u16 frag = (((__u16)ip[6] << 8) | ip[7]) & 0x1fff;
        later_fragment = frag != 0;
        l4 = ip[9];
        __builtin_memcpy(rec.src, ip + 12, 4);
        __builtin_memcpy(rec.dst, ip + 16, 4);
        rec.family = 4;
        rec.ip_len = tot;
        rec.ip_header_len = ihl;
        l4_off = off + ihl;
        ip_end = off + tot;
    } else if (proto == ETH_P_IPV6) {
        __u8 *ip = data + off;
        if ((void *)(ip + 40) > end)
            return done(C_TRUNCATED);
        if ((ip[0] >> 4) != 6)
            return done(C_MALFORMED);
        __u16 plen = ((__u16)ip[4] << 8) | ip[5];
        __builtin_memcpy(rec.src, ip + 8, 16);
        __builtin_memcpy(rec.dst, ip + 24, 16);
        rec.family = 6;
        rec.ip_len = plen + 40;
        __u8 next = ip[6];
        __u32 hoff = off + 40;
#pragma unroll
        for (int i = 0; i < MAX_EXT_HEADERS; i++) {
            if (next != 0 && next != 43 && next != 44 && next != 60)
                break;
            __u8 *eh = data + hoff;
            if ((void *)(eh + 8) > end)
                return done(C_TRUNCATED);
            if (next == 44) { // fragment header: fixed 8 bytes
                __u16 fo = (((__u16)eh[2] << 8) | eh[3]) & 0xfff8;
                later_fragment = fo != 0;
                next = eh[0];
                hoff += 8;
            } else {
                next = eh[0];
                hoff += ((__u32)eh[1] + 1) * 8;
            }
        }
        if (next == 0 || next == 43 || next == 44 || next == 60)
            return done(C_UNSUPPORTED);
        l4 = next;
        rec.ip_header_len = hoff - off;
        l4_off = hoff;
        ip_end = off + 40 + plen;
    } else {
        return done(C_NOT_IP);
    }

    rec.proto = l4;
    rec.frame_len = frame_len;
    rec.ifindex = ctx->ingress_ifindex;
    rec.ts_ns = bpf_ktime_get_ns();
    __u32 payload_off = l4_off;

    if (!later_fragment) {
        if (l4 == IPPROTO_TCP) {
            __u8 *t = data + l4_off;
            if ((void *)(t + 20) > end)
                return done(C_TRUNCATED);
            __u8 doff = (t[12] >> 4) * 4;
            if (doff < 20)
                return done(C_MALFORMED);
            rec.src_port = ((__u16)t[0] << 8) | t[1];
            rec.dst_port = ((__u16)t[2] << 8) | t[3];
            rec.tcp_flags = t[13];
            rec.tcp_window = ((__u16)t[14] << 8) | t[15];
            rec.l4_header_len = doff;
            payload_off = l4_off + doff;
        } else if (l4 == IPPROTO_UDP) {
            __u8 *u = data + l4_off;
            if ((void *)(u + 8) > end)
                return done(C_TRUNCATED);
            rec.src_port = ((__u16)u[0] << 8) | u[1];
            rec.dst_port = ((__u16)u[2] << 8) | u[3];
            rec.l4_header_len = 8;
            payload_off = l4_off + 8;
        } else if (l4 == IPPROTO_ICMP || l4 == 58) {
            __u8 *c = data + l4_off;
            if ((void *)(c + 8) > end)
                return done(C_TRUNCATED);
            rec.l4_header_len = 8;
            payload_off = l4_off + 8;
        }
    }
    if (ip_end > payload_off)
        rec.payload_len = ip_end - payload_off;

    int head = l4 == IPPROTO_UDP && !later_fragment && (rec.dst_port == 53 || rec.src_port == 53);
    if (!head && l4 == IPPROTO_TCP && !later_fragment && rec.payload_len > 0) {
        __u16 port = rec.dst_port;
        head = bpf_map_lookup_elem(&HEAD_PORTS, &port) != 0;
        if (!head) {
            // Replies of the same services (status lines, login failures).
            port = rec.src_port;
            head = bpf_map_lookup_elem(&HEAD_PORTS, &port) != 0;
        }
    }
    if (head) {
        struct mld_head_record *d = bpf_ringbuf_reserve(&RECORDS, sizeof(*d), 0);
        if (!d)
            return done(C_RING_FULL);
        d->r = rec;
        __u32 avail = (__u32)(end - data) > payload_off ? (__u32)(end - data) - payload_off : 0;
        if (avail > rec.payload_len)
            avail = rec.payload_len;
        if (avail > MLD_HEAD_LEN)
            avail = MLD_HEAD_LEN;
        d->r.head_len = 0;
        if (avail > 0 && bpf_xdp_load_bytes(ctx, payload_off, d->head, avail) == 0)
            d->r.head_len = avail;
        bpf_ringbuf_submit(d, 0);
    } else {
        struct mld_record *r = bpf_ringbuf_reserve(&RECORDS, sizeof(*r), 0);
        if (!r)
            return done(C_RING_FULL);
        *r = rec;
        bpf_ringbuf_submit(r, 0);
    }
    return done(C_RECORDED);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
