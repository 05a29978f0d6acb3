/*
 * tern guest agent: memory workload with an integrity check, heartbeat, command channel, and a tiny TCP
 * transaction service. Runs as the only program in the test guest (started by /init).
 *
 * Configuration: tern.KEY=VALUE tokens from /proc/cmdline, then from argv (argv wins; handy for running the
 * agent on a host against a pty).
 *
 * Integrity model: page i of the working set always holds (index=i, gen=g) in its first 16 bytes and 510
 * words derived from (i, g). A separate table expected[i] records the generation the agent last wrote. A page
 * lost by a migration is self-consistent but older: its gen is below expected[i], which VERIFY reports. A torn
 * page fails the word comparison; a lost page of the table itself breaks sum(expected) == writes.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PAGE_SIZE 4096u
#define PAGE_WORDS (PAGE_SIZE / 8u)
#define HEADER_WORDS 2u
#define OUT_CAP (64u * 1024u)
#define IN_CAP 1024u
#define MAX_CLIENTS 32
#define KV_SLOTS 4096u
#define KEY_MAX 64u
/* Work is done in slices and the clock is read after every slice of this many pages. */
#define SLICE_PAGES 8u

struct config {
	uint64_t wss_mib;
	uint64_t dirty_pps;
	uint64_t hb_ms;
	int port;
	int net; /* tern.ip given: serve TCP */
	char chan[128];
};

static struct config cfg = {.wss_mib = 256, .dirty_pps = 0, .hb_ms = 5, .port = 7000, .net = 0, .chan = "/dev/ttyS1"};

/* ---- time ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t boot_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

/* ---- configuration ---- */

static void apply_token(const char *tok)
{
	if (strncmp(tok, "tern.", 5) != 0)
		return;
	const char *kv = tok + 5;
	const char *eq = strchr(kv, '=');
	if (!eq)
		return;
	size_t klen = (size_t)(eq - kv);
	const char *val = eq + 1;
	if (klen == 7 && !strncmp(kv, "wss_mib", klen))
		cfg.wss_mib = strtoull(val, NULL, 10);
	else if (klen == 9 && !strncmp(kv, "dirty_pps", klen))
		cfg.dirty_pps = strtoull(val, NULL, 10);
	else if (klen == 5 && !strncmp(kv, "hb_ms", klen))
		cfg.hb_ms = strtoull(val, NULL, 10);
	else if (klen == 4 && !strncmp(kv, "port", klen))
		cfg.port = atoi(val);
	else if (klen == 2 && !strncmp(kv, "ip", klen))
		cfg.net = 1;
	else if (klen == 4 && !strncmp(kv, "chan", klen))
		snprintf(cfg.chan, sizeof cfg.chan, "%s", val);
}

static void load_config(int argc, char **argv)
{
	char buf[4096];
	FILE *f = fopen("/proc/cmdline", "r");
	if (f) {
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = 0;
		for (char *save = NULL, *tok = strtok_r(buf, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save))
			apply_token(tok);
	}
	for (int i = 1; i < argc; i++)
		apply_token(argv[i]);
	if (cfg.wss_mib == 0)
		cfg.wss_mib = 1;
	if (cfg.hb_ms == 0)
		cfg.hb_ms = 1;
}

/* ---- output buffer on the agent channel ---- */

static int chan_fd = -1;
static char out_buf[OUT_CAP];
static size_t out_len;
static uint64_t out_dropped;

static void flush_out(void)
{
	while (out_len > 0) {
		ssize_t n = write(chan_fd, out_buf, out_len);
		if (n <= 0)
			return; /* EAGAIN (host side not draining) or a transient error: retry on the next tick */
		memmove(out_buf, out_buf + n, out_len - (size_t)n);
		out_len -= (size_t)n;
	}
}

static void out_printf(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line)
		n = sizeof line - 1;
	/* Nobody is reading (host disconnected): old output is worthless, keep the newest. */
	if (out_len + (size_t)n > OUT_CAP) {
		out_dropped += out_len;
		out_len = 0;
	}
	memcpy(out_buf + out_len, line, (size_t)n);
	out_len += (size_t)n;
	flush_out();
}

/* ---- working set ---- */

static uint64_t *wss;      /* npages * PAGE_WORDS words */
static uint64_t *expected; /* generation last written, per page */
static uint64_t npages;
static uint64_t writes;    /* total page writes; equals sum(expected) */
static uint64_t filled;    /* pages written by the initial fill */
static int ready;
static uint64_t fill_started_ns, fill_ms;
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t splitmix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

static uint64_t xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static inline uint64_t pattern_word(uint64_t seed, uint64_t k)
{
	return seed ^ (k * 0xD1B54A32D192ED03ull);
}

static inline uint64_t page_seed(uint64_t i, uint64_t gen)
{
	return splitmix((i << 24) ^ gen ^ 0x7465726eull);
}

static void write_page(uint64_t i)
{
	uint64_t gen = expected[i] + 1;
	uint64_t *p = wss + i * PAGE_WORDS;
	uint64_t seed = page_seed(i, gen);
	p[0] = i;
	p[1] = gen;
	for (uint64_t k = HEADER_WORDS; k < PAGE_WORDS; k++)
		p[k] = pattern_word(seed, k);
	expected[i] = gen;
	writes++;
}

/* Returns -1 when page i is intact, else the index of the first wrong word (0 = index, 1 = generation). */
static int check_page(uint64_t i)
{
	const uint64_t *p = wss + i * PAGE_WORDS;
	if (p[0] != i)
		return 0;
	if (p[1] != expected[i])
		return 1;
	uint64_t seed = page_seed(i, expected[i]);
	for (uint64_t k = HEADER_WORDS; k < PAGE_WORDS; k++)
		if (p[k] != pattern_word(seed, k))
			return (int)k;
	return -1;
}

static void alloc_wss(void)
{
	npages = cfg.wss_mib * 1024ull * 1024ull / PAGE_SIZE;
	wss = mmap(NULL, npages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	expected = mmap(NULL, npages * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (wss == MAP_FAILED || expected == MAP_FAILED) {
		fprintf(stderr, "tern-agent: cannot map %" PRIu64 " MiB: %s\n", cfg.wss_mib, strerror(errno));
		exit(1);
	}
}

/* ---- incremental verification (runs in slices so heartbeats keep flowing) ---- */

static struct {
	int active;
	uint64_t next;
	uint64_t bad;
	uint64_t first_bad;
	uint64_t first_expected, first_got;
	int first_word;
	uint64_t started_ns;
} ver;
static uint64_t verify_runs, verify_last_ms;

static void finish_verify(void)
{
	uint64_t sum = 0;
	for (uint64_t i = 0; i < npages; i++)
		sum += expected[i];
	ver.active = 0;
	verify_runs++;
	verify_last_ms = (now_ns() - ver.started_ns) / 1000000ull;
	if (ver.bad > 0)
		out_printf("VERIFY FAIL page=%" PRIu64 " expected=%" PRIu64 " got=%" PRIu64 " word=%d bad_pages=%" PRIu64
			   " pages=%" PRIu64 " writes=%" PRIu64 " ms=%" PRIu64 "\n",
			   ver.first_bad, ver.first_expected, ver.first_got, ver.first_word, ver.bad, npages, writes,
			   verify_last_ms);
	else if (sum != writes)
		out_printf("VERIFY FAIL table expected_sum=%" PRIu64 " writes=%" PRIu64 " pages=%" PRIu64 "\n", sum, writes,
			   npages);
	else
		out_printf("VERIFY OK pages=%" PRIu64 " writes=%" PRIu64 " ms=%" PRIu64 "\n", npages, writes,
			   verify_last_ms);
}

static void verify_slice(void)
{
	uint64_t end = ver.next + SLICE_PAGES;
	if (end > npages)
		end = npages;
	for (uint64_t i = ver.next; i < end; i++) {
		int w = check_page(i);
		if (w >= 0) {
			if (ver.bad == 0) {
				ver.first_bad = i;
				ver.first_expected = expected[i];
				ver.first_got = wss[i * PAGE_WORDS + 1];
				ver.first_word = w;
			}
			ver.bad++;
		}
	}
	ver.next = end;
	if (ver.next == npages)
		finish_verify();
}

/* ---- dirtying ---- */

static double dirty_owed; /* pages due but not yet written */
static uint64_t dirty_last_ns;

static void dirty_slice(uint64_t n)
{
	for (uint64_t j = 0; j < n; j++)
		write_page(xorshift() % npages);
}

/* Simulates exactly what a lost page looks like: the page keeps a complete older version while the table
 * (the guest's own record) moved on. */
static void corrupt_page(uint64_t i)
{
	static uint64_t stale[PAGE_WORDS];
	memcpy(stale, wss + i * PAGE_WORDS, PAGE_SIZE);
	uint64_t old_gen = expected[i];
	write_page(i);
	memcpy(wss + i * PAGE_WORDS, stale, PAGE_SIZE);
	out_printf("CORRUPT OK page=%" PRIu64 " stale=%" PRIu64 " expected=%" PRIu64 "\n", i, old_gen, expected[i]);
}

/* ---- heartbeat ---- */

static uint64_t hb_seq;
static uint64_t hb_next_ns;
static uint64_t hb_late; /* heartbeats sent more than one period late */

static void heartbeat_tick(uint64_t now)
{
	if (now < hb_next_ns)
		return;
	uint64_t period = cfg.hb_ms * 1000000ull;
	if (now - hb_next_ns > period)
		hb_late++;
	out_printf("HB %" PRIu64 "\n", hb_seq++);
	hb_next_ns += period;
	if (hb_next_ns <= now)
		hb_next_ns = now + period;
}

/* ---- TCP transaction service ---- */

struct kv {
	char key[KEY_MAX];
	uint64_t value;
	int used;
};
static struct kv kv_table[KV_SLOTS];

static struct kv *kv_find(const char *key, int create)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *c = key; *c; c++)
		h = (h ^ (uint8_t)*c) * 1099511628211ull;
	for (uint64_t probe = 0; probe < KV_SLOTS; probe++) {
		struct kv *e = &kv_table[(h + probe) % KV_SLOTS];
		if (e->used && !strcmp(e->key, key))
			return e;
		if (!e->used) {
			if (!create)
				return NULL;
			e->used = 1;
			snprintf(e->key, KEY_MAX, "%s", key);
			return e;
		}
	}
	return NULL;
}

struct client {
	int fd;
	char in[IN_CAP];
	size_t in_len;
};
static struct client clients[MAX_CLIENTS];
static int listen_fd = -1;
static uint64_t tx_count;

static void client_reply(struct client *c, const char *line)
{
	/* Replies are tiny; a client that does not read them is dropped instead of buffered. */
	size_t len = strlen(line);
	if (write(c->fd, line, len) != (ssize_t)len) {
		close(c->fd);
		c->fd = -1;
	}
}

static void tx_handle(struct client *c, char *line)
{
	char reply[128];
	char *save = NULL;
	char *cmd = strtok_r(line, " ", &save);
	char *key = strtok_r(NULL, " ", &save);
	if (cmd && !strcmp(cmd, "PING")) {
		client_reply(c, "PONG\n");
		return;
	}
	if (!cmd || !key || strlen(key) >= KEY_MAX || (strcmp(cmd, "INC") && strcmp(cmd, "GET"))) {
		client_reply(c, "ERR usage: INC <key> | GET <key> | PING\n");
		return;
	}
	struct kv *e = kv_find(key, cmd[0] == 'I');
	if (cmd[0] == 'I') {
		if (!e) {
			client_reply(c, "ERR table full\n");
			return;
		}
		e->value++;
		tx_count++;
	}
	snprintf(reply, sizeof reply, "%" PRIu64 "\n", e ? e->value : 0);
	client_reply(c, reply);
}

static void tcp_listen(void)
{
	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int one = 1;
	setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg.port), .sin_addr = {INADDR_ANY}};
	if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) || listen(listen_fd, 16)) {
		fprintf(stderr, "tern-agent: tcp port %d: %s\n", cfg.port, strerror(errno));
		close(listen_fd);
		listen_fd = -1;
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		clients[i].fd = -1;
}

static void tcp_accept(void)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK);
	if (fd < 0)
		return;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd < 0) {
			clients[i].fd = fd;
			clients[i].in_len = 0;
			return;
		}
	close(fd);
}

/* Splits buf into lines, calling fn for each complete one; keeps the unfinished tail. */
static void take_lines(char *buf, size_t *len, void (*fn)(void *, char *), void *ctx)
{
	size_t start = 0;
	for (size_t i = 0; i < *len; i++) {
		if (buf[i] != '\n')
			continue;
		buf[i] = 0;
		if (i > start && buf[i - 1] == '\r')
			buf[i - 1] = 0;
		fn(ctx, buf + start);
		start = i + 1;
	}
	memmove(buf, buf + start, *len - start);
	*len -= start;
	if (*len == IN_CAP) /* a line longer than the buffer is garbage: drop it */
		*len = 0;
}

static void tx_line(void *ctx, char *line)
{
	struct client *c = ctx;
	if (c->fd >= 0 && *line)
		tx_handle(c, line);
}

static void tcp_read(struct client *c)
{
	ssize_t n = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return;
		close(c->fd);
		c->fd = -1;
		return;
	}
	c->in_len += (size_t)n;
	take_lines(c->in, &c->in_len, tx_line, c);
}

/* ---- agent channel commands ---- */

static char chan_in[IN_CAP];
static size_t chan_in_len;
static uint64_t started_ns;

static void send_stats(void)
{
	out_printf("STATS {\"ready\":%s,\"wss_mib\":%" PRIu64 ",\"pages\":%" PRIu64 ",\"filled\":%" PRIu64
		   ",\"writes\":%" PRIu64 ",\"dirty_pps\":%" PRIu64 ",\"hb_ms\":%" PRIu64 ",\"hb_seq\":%" PRIu64
		   ",\"hb_late\":%" PRIu64 ",\"fill_ms\":%" PRIu64 ",\"uptime_ms\":%" PRIu64 ",\"agent_ms\":%" PRIu64
		   ",\"verify_runs\":%" PRIu64 ",\"verify_last_ms\":%" PRIu64 ",\"out_dropped\":%" PRIu64
		   ",\"tx\":%" PRIu64 ",\"net\":%s}\n",
		   ready ? "true" : "false", cfg.wss_mib, npages, filled, writes, cfg.dirty_pps, cfg.hb_ms, hb_seq,
		   hb_late, fill_ms, boot_ms(), (now_ns() - started_ns) / 1000000ull, verify_runs, verify_last_ms,
		   out_dropped, tx_count, listen_fd >= 0 ? "true" : "false");
}

static void chan_line(void *ctx, char *line)
{
	(void)ctx;
	char *save = NULL;
	char *cmd = strtok_r(line, " ", &save);
	char *arg = strtok_r(NULL, " ", &save);
	if (!cmd)
		return;
	if (!strcmp(cmd, "STATS")) {
		send_stats();
	} else if (!strcmp(cmd, "VERIFY")) {
		if (!ready)
			out_printf("ERR VERIFY not ready\n");
		else if (ver.active)
			out_printf("ERR VERIFY busy\n");
		else {
			memset(&ver, 0, sizeof ver);
			ver.active = 1;
			ver.started_ns = now_ns();
		}
	} else if (!strcmp(cmd, "DIRTY")) {
		char *end = NULL;
		unsigned long long pps = arg ? strtoull(arg, &end, 10) : 0;
		if (!arg || *end) {
			out_printf("ERR DIRTY usage: DIRTY <pages-per-second>\n");
		} else {
			cfg.dirty_pps = pps;
			dirty_owed = 0;
			dirty_last_ns = now_ns();
			out_printf("DIRTY OK pps=%" PRIu64 "\n", cfg.dirty_pps);
		}
	} else if (!strcmp(cmd, "CORRUPT")) {
		char *end = NULL;
		unsigned long long page = arg ? strtoull(arg, &end, 10) : 0;
		if (!ready)
			out_printf("ERR CORRUPT not ready\n");
		else if (!arg || *end || page >= npages)
			out_printf("ERR CORRUPT usage: CORRUPT <page 0..%" PRIu64 ">\n", npages - 1);
		else
			corrupt_page(page);
	} else {
		out_printf("ERR %s unknown command\n", cmd);
	}
}

static int open_chan(void)
{
	int fd = open(cfg.chan, O_RDWR | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		fprintf(stderr, "tern-agent: open %s: %s\n", cfg.chan, strerror(errno));
		exit(1);
	}
	struct termios t;
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		cfsetspeed(&t, B115200);
		tcsetattr(fd, TCSANOW, &t);
	}
	return fd;
}

/* ---- main loop ---- */

int main(int argc, char **argv)
{
	load_config(argc, argv);
	started_ns = now_ns();
	rng ^= started_ns;
	alloc_wss();
	chan_fd = open_chan();
	if (cfg.net)
		tcp_listen();
	fprintf(stderr, "tern-agent: wss=%" PRIu64 "MiB pages=%" PRIu64 " dirty_pps=%" PRIu64 " hb_ms=%" PRIu64
			" chan=%s tcp=%d\n",
		cfg.wss_mib, npages, cfg.dirty_pps, cfg.hb_ms, cfg.chan, listen_fd >= 0 ? cfg.port : 0);

	fill_started_ns = now_ns();
	hb_next_ns = fill_started_ns;
	dirty_last_ns = fill_started_ns;
	int chan_hup = 0;
	struct pollfd pfd[2 + MAX_CLIENTS];

	for (;;) {
		uint64_t now = now_ns();
		if (now >= hb_next_ns) {
			chan_hup = 0;
			heartbeat_tick(now);
		}

		/* Work until the next heartbeat is due: fill first, then verification, then paced dirtying. */
		while ((now = now_ns()) < hb_next_ns) {
			if (!ready) {
				uint64_t end = filled + SLICE_PAGES < npages ? filled + SLICE_PAGES : npages;
				for (; filled < end; filled++)
					write_page(filled);
				if (filled == npages) {
					ready = 1;
					fill_ms = (now_ns() - fill_started_ns) / 1000000ull;
					dirty_last_ns = now_ns();
					out_printf("READY {\"pages\":%" PRIu64 ",\"wss_mib\":%" PRIu64 ",\"fill_ms\":%" PRIu64
						   ",\"uptime_ms\":%" PRIu64 ",\"dirty_pps\":%" PRIu64 ",\"hb_ms\":%" PRIu64
						   ",\"net\":%s}\n",
						   npages, cfg.wss_mib, fill_ms, boot_ms(), cfg.dirty_pps, cfg.hb_ms,
						   listen_fd >= 0 ? "true" : "false");
				}
				continue;
			}
			if (ver.active) {
				verify_slice();
				continue;
			}
			if (cfg.dirty_pps > 0) {
				dirty_owed += (double)cfg.dirty_pps * (double)(now - dirty_last_ns) / 1e9;
				dirty_last_ns = now;
				/* After a long stall (a migration freeze) do not catch up in one burst. */
				double cap = (double)cfg.dirty_pps / 10.0 + SLICE_PAGES;
				if (dirty_owed > cap)
					dirty_owed = cap;
				if (dirty_owed >= 1.0) {
					uint64_t n = (uint64_t)dirty_owed < SLICE_PAGES ? (uint64_t)dirty_owed : SLICE_PAGES;
					dirty_slice(n);
					dirty_owed -= (double)n;
					continue;
				}
			}
			break;
		}

		int busy = !ready || ver.active;
		int timeout_ms = 0;
		if (!busy) {
			uint64_t wait_ns = hb_next_ns > now ? hb_next_ns - now : 0;
			/* While dirtying, wake every millisecond so writes are spread over time. */
			if (cfg.dirty_pps > 0 && wait_ns > 1000000ull)
				wait_ns = 1000000ull;
			timeout_ms = (int)((wait_ns + 999999ull) / 1000000ull);
		}

		int n = 0;
		int chan_idx = -1, listen_idx = -1;
		if (!chan_hup) {
			pfd[n] = (struct pollfd){.fd = chan_fd, .events = POLLIN | (out_len ? POLLOUT : 0)};
			chan_idx = n++;
		}
		if (listen_fd >= 0) {
			pfd[n] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
			listen_idx = n++;
		}
		int first_client = n;
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (clients[i].fd >= 0)
				pfd[n++] = (struct pollfd){.fd = clients[i].fd, .events = POLLIN};
		if (poll(pfd, (nfds_t)n, timeout_ms) <= 0)
			continue;

		if (chan_idx >= 0) {
			short re = pfd[chan_idx].revents;
			if (re & POLLOUT)
				flush_out();
			if (re & POLLIN) {
				ssize_t r = read(chan_fd, chan_in + chan_in_len, IN_CAP - chan_in_len);
				if (r > 0) {
					chan_in_len += (size_t)r;
					take_lines(chan_in, &chan_in_len, chan_line, NULL);
				} else if (r == 0) {
					chan_hup = 1;
				}
			} else if (re & (POLLHUP | POLLERR)) {
				/* A hung-up channel (e.g. tern.chan is a virtio-serial port and no host is
				 * connected): what is queued would reach the next host stale, so drop it; stop
				 * polling until the next heartbeat tick, else poll would spin. */
				out_dropped += out_len;
				out_len = 0;
				chan_hup = 1;
			}
		}
		if (listen_idx >= 0 && (pfd[listen_idx].revents & POLLIN))
			tcp_accept();
		for (int k = first_client; k < n; k++) {
			if (!pfd[k].revents)
				continue;
			for (int i = 0; i < MAX_CLIENTS; i++)
				if (clients[i].fd == pfd[k].fd) {
					tcp_read(&clients[i]);
					break;
				}
		}
	}
}
