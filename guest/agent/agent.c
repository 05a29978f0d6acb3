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
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
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
	char txlog[128]; /* block device of the transaction log; empty = no log */
};

static struct config cfg = {
	.wss_mib = 256, .dirty_pps = 0, .hb_ms = 5, .port = 7000, .net = 0, .chan = "/dev/ttyS1", .txlog = ""};

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
	else if (klen == 5 && !strncmp(kv, "txlog", klen))
		snprintf(cfg.txlog, sizeof cfg.txlog, "%s", val);
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
	char line[4096];
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

/* ---- durable transaction log (tern.txlog) ----
 *
 * On-disk format, little-endian, fixed 4096-byte slots (guest/README.md has the same table):
 *   slot 0       header: "TERNTXH1", crc32 (u32) of bytes 12..4095, slot size (u32, 4096), log id (u64), zeros
 *   slot s >= 1  record of seq s: "TERNTXR1", crc32 (u32) of bytes 12..4095, payload length (u32), log id (u64),
 *                seq (u64, always s), payload, zeros
 * The log is slots 1..L where every slot is valid (magic, crc, id, seq == slot) and slot L+1 is not. The writer
 * has one write in flight at a time and each is on stable storage before the next starts, so a crash leaves at
 * most one torn slot, L+1, and every slot after it was never written. A slot is 4096 bytes so that no two
 * records share a physical sector (512 or 4096 bytes): a torn write cannot damage an acknowledged record.
 *
 * Writes use O_DIRECT | O_DSYNC on the block device: O_DIRECT sends each 4096-byte write (aligned buffer and
 * offset) straight to the device instead of the guest page cache, and O_DSYNC makes the write return only after
 * the device acknowledged it as stable (virtio-blk has no FUA: Linux sends cache flushes with the write, which
 * QEMU turns into fdatasync of the image), so the acknowledgement can follow the write directly. One syscall per
 * transaction, and no separate fdatasync that one path could forget.
 *
 * The I/O runs in one thread so the heartbeat and the other clients are not held up by a flush; the main loop
 * queues operations and learns of completions through a pipe, in queue order.
 */
#define TXL_SLOT 4096u
#define TXL_PAYLOAD_MAX 64u
#define TXL_QUEUE 256u
#define TXL_LIST_MAX 32u
#define TXL_SCAN_SLOTS 64u

static const char TXL_HEADER_MAGIC[8] = {'T', 'E', 'R', 'N', 'T', 'X', 'H', '1'};
static const char TXL_RECORD_MAGIC[8] = {'T', 'E', 'R', 'N', 'T', 'X', 'R', '1'};

static uint32_t crc32_table[256];

static void crc32_init(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc32_table[n] = c;
	}
}

/* IEEE 802.3 CRC-32, as zlib's crc32(). */
static uint32_t crc32_of(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++)
		c = crc32_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t)v);
	put_u32(p + 4, (uint32_t)(v >> 32));
}

static void slot_seal(uint8_t *slot)
{
	put_u32(slot + 8, crc32_of(slot + 12, TXL_SLOT - 12));
}

static int slot_blank(const uint8_t *slot)
{
	for (size_t i = 0; i < TXL_SLOT; i++)
		if (slot[i])
			return 0;
	return 1;
}

/* Why a slot ends the log. */
enum txl_end { END_NONE, END_BLANK, END_TORN, END_STALE, END_DEVICE };
static const char *const end_names[] = {"none", "blank", "torn", "stale", "device-end"};

static enum txl_end record_check(const uint8_t *slot, uint64_t id, uint64_t seq)
{
	if (slot_blank(slot))
		return END_BLANK;
	if (memcmp(slot, TXL_RECORD_MAGIC, 8) || get_u32(slot + 8) != crc32_of(slot + 12, TXL_SLOT - 12) ||
	    get_u32(slot + 12) > TXL_PAYLOAD_MAX)
		return END_TORN;
	if (get_u64(slot + 16) != id || get_u64(slot + 24) != seq)
		return END_STALE; /* intact, but of another log or another place */
	return END_NONE;
}

enum { TXL_OFF, TXL_OK, TXL_FAILED };

static struct {
	int fd;
	int state;
	int readable; /* the header is valid: TXLOG can read the log even when appending is refused */
	char error[200];
	uint64_t id;
	uint64_t capacity; /* record slots */
	uint64_t next_seq; /* main thread: the seq of the next TX */
	uint64_t acked;    /* main thread: TX acknowledged to clients since the agent started */
	uint64_t recovered;
	enum txl_end recovered_end;
	char wcache[24]; /* the guest's view of the device's write cache */
	uint8_t *io;     /* TXL_SCAN_SLOTS aligned slots, I/O thread only after start */
} txl = {.fd = -1};

enum txl_op_kind { OP_WRITE, OP_SUMMARY, OP_LIST };

struct txl_op {
	enum txl_op_kind kind;
	int client;      /* OP_WRITE: index in clients[] */
	uint64_t gen;    /* OP_WRITE: that client's connection generation */
	uint64_t seq;    /* OP_WRITE: seq; OP_LIST: first seq */
	uint64_t count;  /* OP_LIST: most records to list; OP_SUMMARY: TX acknowledged so far */
	char payload[TXL_PAYLOAD_MAX + 1];
	int ok;          /* result */
	char *line;      /* result: OP_SUMMARY/OP_LIST reply, or OP_WRITE error (malloc'd) */
};

static struct txl_op txl_queue[TXL_QUEUE];
/* Indices grow and are taken mod TXL_QUEUE: the I/O thread runs [head, tail); the main loop reaps finished ops
 * [reaped, head) and reuses a place only once reaped. */
static unsigned txl_head, txl_tail, txl_reaped;
static pthread_mutex_t txl_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t txl_cv = PTHREAD_COND_INITIALIZER;
static int txl_done_pipe[2] = {-1, -1}; /* the I/O thread writes the index of each finished op */

static ssize_t read_slots(uint64_t first, uint64_t n)
{
	ssize_t r = pread(txl.fd, txl.io, n * TXL_SLOT, (off_t)(first * TXL_SLOT));
	return r < 0 ? r : r / (ssize_t)TXL_SLOT;
}

/* Reads records from seq `from` on, calling fn for each valid one until the log ends or fn returns nonzero.
 * Returns why it stopped (END_NONE: fn asked) and sets *end_seq to the first seq not delivered. */
static enum txl_end scan_records(uint64_t from, int (*fn)(void *, uint64_t, const uint8_t *, uint32_t), void *ctx,
				 uint64_t *end_seq)
{
	uint64_t seq = from;
	for (;;) {
		if (seq > txl.capacity) {
			*end_seq = seq;
			return END_DEVICE;
		}
		uint64_t want = txl.capacity - seq + 1 < TXL_SCAN_SLOTS ? txl.capacity - seq + 1 : TXL_SCAN_SLOTS;
		ssize_t got = read_slots(seq, want);
		if (got <= 0) {
			*end_seq = seq;
			return END_DEVICE;
		}
		for (ssize_t i = 0; i < got; i++, seq++) {
			const uint8_t *slot = txl.io + (size_t)i * TXL_SLOT;
			enum txl_end e = record_check(slot, txl.id, seq);
			if (e != END_NONE) {
				*end_seq = seq;
				return e;
			}
			if (fn(ctx, seq, slot + 32, get_u32(slot + 12))) {
				*end_seq = seq + 1;
				return END_NONE;
			}
		}
	}
}

static int count_record(void *ctx, uint64_t seq, const uint8_t *payload, uint32_t len)
{
	(void)seq, (void)payload, (void)len, (void)ctx;
	return 0;
}

static void txl_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(txl.error, sizeof txl.error, fmt, ap);
	va_end(ap);
	txl.state = TXL_FAILED;
	fprintf(stderr, "tern-agent: txlog %s: %s\n", cfg.txlog, txl.error);
}

/* Opens the log at startup: formats a blank device, or finds the end of an existing log. */
static void txl_open(void)
{
	if (!cfg.txlog[0])
		return;
	crc32_init();
	txl.state = TXL_OK;
	/* The device node appears when virtio_blk has probed; /init loaded it just before, so give it a moment. */
	for (int tries = 0; tries < 50; tries++) {
		txl.fd = open(cfg.txlog, O_RDWR | O_DIRECT | O_DSYNC | O_CLOEXEC);
		if (txl.fd >= 0 || errno != ENOENT)
			break;
		usleep(100000);
	}
	if (txl.fd < 0) {
		txl_fail("open: %s", strerror(errno));
		return;
	}
	uint64_t size = 0;
	if (ioctl(txl.fd, BLKGETSIZE64, &size) != 0) {
		off_t end = lseek(txl.fd, 0, SEEK_END); /* a regular file, when the agent runs on a host */
		size = end > 0 ? (uint64_t)end : 0;
	}
	if (size < 2 * TXL_SLOT) {
		txl_fail("device too small (%" PRIu64 " bytes)", size);
		return;
	}
	txl.capacity = size / TXL_SLOT - 1;
	if (posix_memalign((void **)&txl.io, TXL_SLOT, TXL_SCAN_SLOTS * TXL_SLOT)) {
		txl_fail("out of memory");
		return;
	}
	const char *base = strrchr(cfg.txlog, '/');
	char path[256];
	snprintf(path, sizeof path, "/sys/block/%s/queue/write_cache", base ? base + 1 : cfg.txlog);
	FILE *wc = fopen(path, "r");
	snprintf(txl.wcache, sizeof txl.wcache, "unknown");
	if (wc) {
		if (fgets(txl.wcache, sizeof txl.wcache, wc))
			for (char *c = txl.wcache; *c; c++)
				*c = *c == ' ' ? '_' : *c == '\n' ? 0 : *c;
		fclose(wc);
	}

	if (read_slots(0, 1) != 1) {
		txl_fail("cannot read the header: %s", strerror(errno));
		return;
	}
	uint8_t *h = txl.io;
	if (slot_blank(h)) {
		if (getrandom(&txl.id, sizeof txl.id, 0) != sizeof txl.id)
			txl.id = now_ns() ^ 0x5A17ull;
		memcpy(h, TXL_HEADER_MAGIC, 8);
		put_u32(h + 12, TXL_SLOT);
		put_u64(h + 16, txl.id);
		slot_seal(h);
		if (pwrite(txl.fd, h, TXL_SLOT, 0) != (ssize_t)TXL_SLOT) {
			txl_fail("cannot write the header: %s", strerror(errno));
			return;
		}
	} else if (memcmp(h, TXL_HEADER_MAGIC, 8) || get_u32(h + 8) != crc32_of(h + 12, TXL_SLOT - 12) ||
		   get_u32(h + 12) != TXL_SLOT) {
		/* Never format a device that holds something: it may be somebody's data. */
		txl_fail("slot 0 is neither blank nor a tern txlog header: refusing to use the device");
		return;
	} else {
		txl.id = get_u64(h + 16);
	}
	txl.readable = 1;

	uint64_t end_seq;
	txl.recovered_end = scan_records(1, count_record, NULL, &end_seq);
	txl.recovered = end_seq - 1;
	txl.next_seq = end_seq;
	if (txl.recovered_end == END_TORN || txl.recovered_end == END_STALE) {
		/* A crash tears at most the last slot and never writes past it: a torn slot followed by anything but a
		 * blank slot (or the device end) is damage this writer did not cause. Keep it for inspection. */
		if (end_seq < txl.capacity && (read_slots(end_seq + 1, 1) != 1 || !slot_blank(txl.io))) {
			txl_fail("damaged at seq %" PRIu64 " (%s slot followed by a written one): refusing to append", end_seq,
				 end_names[txl.recovered_end]);
			return;
		}
	}
	fprintf(stderr, "tern-agent: txlog %s: id=%016" PRIx64 " capacity=%" PRIu64 " records=%" PRIu64
			" end=%s write_cache=%s\n",
		cfg.txlog, txl.id, txl.capacity, txl.recovered, end_names[txl.recovered_end], txl.wcache);
}

struct summary {
	uint64_t records, last, digest;
};

/* FNV-1a 64 over the text "<seq>:<payload>\n" of every record, in order (guest/host/txlog.ts computes it too). */
static uint64_t fnv_text(uint64_t h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
	return h;
}

static int summarize_record(void *ctx, uint64_t seq, const uint8_t *payload, uint32_t len)
{
	struct summary *s = ctx;
	char num[24];
	int n = snprintf(num, sizeof num, "%" PRIu64 ":", seq);
	s->digest = fnv_text(s->digest, num, (size_t)n);
	s->digest = fnv_text(s->digest, (const char *)payload, len);
	s->digest = fnv_text(s->digest, "\n", 1);
	s->records++;
	s->last = seq;
	return 0;
}

struct listing {
	char *out;
	size_t len, cap;
	uint64_t n, max;
};

static int list_record(void *ctx, uint64_t seq, const uint8_t *payload, uint32_t len)
{
	struct listing *l = ctx;
	int n = snprintf(l->out + l->len, l->cap - l->len, " %" PRIu64 ":%.*s", seq, (int)len, (const char *)payload);
	if (n > 0)
		l->len += (size_t)n;
	return ++l->n >= l->max;
}

static char *txl_run_summary(uint64_t acked)
{
	struct summary s = {.digest = 14695981039346656037ull}; /* FNV-1a 64 offset basis */
	uint64_t end_seq;
	enum txl_end e = scan_records(1, summarize_record, &s, &end_seq);
	char *line = malloc(512);
	snprintf(line, 512,
		 "TXLOG OK dev=%s id=%016" PRIx64 " slot=%u capacity=%" PRIu64 " records=%" PRIu64 " last=%" PRIu64
		 " end=%s digest=%016" PRIx64 " acked=%" PRIu64 " recovered=%" PRIu64 " recovered_end=%s write_cache=%s\n",
		 cfg.txlog, txl.id, TXL_SLOT, txl.capacity, s.records, s.last, end_names[e], s.digest, acked,
		 txl.recovered, end_names[txl.recovered_end], txl.wcache);
	return line;
}

static char *txl_run_list(uint64_t from, uint64_t count)
{
	struct listing l = {.cap = 128 + TXL_LIST_MAX * (TXL_PAYLOAD_MAX + 24), .max = count};
	l.out = malloc(l.cap);
	l.out[0] = 0;
	uint64_t end_seq;
	enum txl_end e = scan_records(from, list_record, &l, &end_seq);
	char *line = malloc(l.cap + 128);
	snprintf(line, l.cap + 128, "TXLOG LIST from=%" PRIu64 " n=%" PRIu64 " end=%s%s\n", from, l.n, end_names[e],
		 l.out);
	free(l.out);
	return line;
}

static void *txl_thread(void *arg)
{
	(void)arg;
	uint8_t *slot = NULL;
	if (posix_memalign((void **)&slot, TXL_SLOT, TXL_SLOT))
		abort();
	int failed = 0;
	for (;;) {
		pthread_mutex_lock(&txl_mu);
		while (txl_head == txl_tail)
			pthread_cond_wait(&txl_cv, &txl_mu);
		unsigned idx = txl_head % TXL_QUEUE;
		pthread_mutex_unlock(&txl_mu);
		struct txl_op *op = &txl_queue[idx];
		op->ok = 1;
		op->line = NULL;
		if (op->kind == OP_WRITE) {
			if (failed) {
				op->ok = 0;
			} else {
				size_t len = strlen(op->payload);
				memset(slot, 0, TXL_SLOT);
				memcpy(slot, TXL_RECORD_MAGIC, 8);
				put_u32(slot + 12, (uint32_t)len);
				put_u64(slot + 16, txl.id);
				put_u64(slot + 24, op->seq);
				memcpy(slot + 32, op->payload, len);
				slot_seal(slot);
				ssize_t w = pwrite(txl.fd, slot, TXL_SLOT, (off_t)(op->seq * TXL_SLOT));
				if (w != (ssize_t)TXL_SLOT) {
					/* The slot's state is unknown now; later writes could leave a hole. Stop writing. */
					failed = 1;
					op->ok = 0;
					op->line = malloc(160);
					snprintf(op->line, 160, "write of seq %" PRIu64 " failed: %s", op->seq,
						 w < 0 ? strerror(errno) : "short write");
				}
			}
		} else if (op->kind == OP_SUMMARY) {
			op->line = txl_run_summary(op->count);
		} else {
			op->line = txl_run_list(op->seq, op->count);
		}
		pthread_mutex_lock(&txl_mu);
		txl_head++;
		pthread_mutex_unlock(&txl_mu);
		while (write(txl_done_pipe[1], &idx, sizeof idx) < 0 && errno == EINTR)
			;
	}
	return NULL;
}

static void txl_start_thread(void)
{
	if (!txl.readable)
		return;
	pthread_t t;
	if (pipe2(txl_done_pipe, O_CLOEXEC | O_NONBLOCK) || pthread_create(&t, NULL, txl_thread, NULL))
		txl_fail("cannot start the I/O thread: %s", strerror(errno));
}

/* Queues an op (main thread); returns it to fill in, or NULL when the queue is full. The I/O thread takes it
 * once txl_submit() publishes it. */
static struct txl_op *txl_slot_for(enum txl_op_kind kind)
{
	if (txl_tail - txl_reaped >= TXL_QUEUE)
		return NULL;
	struct txl_op *op = &txl_queue[txl_tail % TXL_QUEUE];
	memset(op, 0, sizeof *op);
	op->kind = kind;
	return op;
}

static void txl_submit(void)
{
	pthread_mutex_lock(&txl_mu);
	txl_tail++;
	pthread_cond_signal(&txl_cv);
	pthread_mutex_unlock(&txl_mu);
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
	uint64_t gen;  /* connection generation: an acknowledgement finds the connection it belongs to */
	int waiting;   /* a TX of this client is being written: its later lines wait, replies stay in order */
	char in[IN_CAP];
	size_t in_len;
};
static struct client clients[MAX_CLIENTS];
static uint64_t client_gens;
static int listen_fd = -1;
static uint64_t tx_count;

static void client_reply(struct client *c, const char *line)
{
	/* Replies are tiny; a client that does not read them is dropped instead of buffered. MSG_NOSIGNAL: a client
	 * that closed its end (with a reply still due) must not kill the agent with SIGPIPE. */
	size_t len = strlen(line);
	if (send(c->fd, line, len, MSG_NOSIGNAL) != (ssize_t)len) {
		close(c->fd);
		c->fd = -1;
	}
}

static int payload_ok(const char *p)
{
	size_t n = strlen(p);
	if (n == 0 || n > TXL_PAYLOAD_MAX)
		return 0;
	for (const char *q = p; *q; q++)
		if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || strchr("._-", *q)))
			return 0;
	return 1;
}

/* TX <payload>: appends a record to the log; the reply OK <seq> is sent once the record is on stable storage
 * (txl_reap). */
static void tx_durable(struct client *c, const char *payload)
{
	char reply[256];
	if (txl.state == TXL_OFF) {
		client_reply(c, "ERR TX no transaction log (tern.txlog is not set)\n");
		return;
	}
	if (txl.state == TXL_FAILED) {
		snprintf(reply, sizeof reply, "ERR TX log failed: %s\n", txl.error);
		client_reply(c, reply);
		return;
	}
	if (!payload || !payload_ok(payload)) {
		snprintf(reply, sizeof reply, "ERR TX usage: TX <payload: 1-%u of [A-Za-z0-9._-]>\n", TXL_PAYLOAD_MAX);
		client_reply(c, reply);
		return;
	}
	if (txl.next_seq > txl.capacity) {
		client_reply(c, "ERR TX log full\n");
		return;
	}
	struct txl_op *op = txl_slot_for(OP_WRITE);
	if (!op) {
		client_reply(c, "ERR TX busy\n");
		return;
	}
	op->client = (int)(c - clients);
	op->gen = c->gen;
	op->seq = txl.next_seq++;
	snprintf(op->payload, sizeof op->payload, "%s", payload);
	c->waiting = 1;
	txl_submit();
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
	if (cmd && !strcmp(cmd, "TX")) {
		tx_durable(c, strtok_r(NULL, " ", &save) ? NULL : key); /* one token, no more */
		return;
	}
	if (!cmd || !key || strlen(key) >= KEY_MAX || (strcmp(cmd, "INC") && strcmp(cmd, "GET"))) {
		client_reply(c, "ERR usage: INC <key> | GET <key> | TX <payload> | PING\n");
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
			clients[i].gen = ++client_gens;
			clients[i].waiting = 0;
			clients[i].in_len = 0;
			return;
		}
	close(fd);
}

/* Splits buf into lines, calling fn for each complete one until fn returns nonzero; keeps the rest. */
static void take_lines(char *buf, size_t *len, int (*fn)(void *, char *), void *ctx)
{
	size_t start = 0;
	for (size_t i = 0; i < *len; i++) {
		if (buf[i] != '\n')
			continue;
		buf[i] = 0;
		if (i > start && buf[i - 1] == '\r')
			buf[i - 1] = 0;
		int stop = fn(ctx, buf + start);
		start = i + 1;
		if (stop)
			break;
	}
	memmove(buf, buf + start, *len - start);
	*len -= start;
	if (*len == IN_CAP) /* a line longer than the buffer is garbage: drop it */
		*len = 0;
}

static int tx_line(void *ctx, char *line)
{
	struct client *c = ctx;
	if (c->fd >= 0 && *line)
		tx_handle(c, line);
	return c->fd < 0 || c->waiting;
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

/* Main loop: handles the ops the I/O thread finished, in queue order, so acknowledgements go out in seq order. */
static void txl_reap(void)
{
	unsigned idx;
	while (read(txl_done_pipe[0], &idx, sizeof idx) == (ssize_t)sizeof idx) {
		pthread_mutex_lock(&txl_mu); /* makes the thread's results visible */
		struct txl_op op = txl_queue[idx];
		pthread_mutex_unlock(&txl_mu);
		txl_reaped++;
		if (op.kind != OP_WRITE) {
			out_printf("%s", op.line);
			free(op.line);
			continue;
		}
		if (!op.ok && txl.state == TXL_OK)
			txl_fail("%s", op.line ? op.line : "write failed");
		free(op.line);
		struct client *c = &clients[op.client];
		if (c->fd < 0 || c->gen != op.gen)
			continue; /* the client went away: the record may be durable, but it was never acknowledged */
		char reply[256];
		if (op.ok)
			snprintf(reply, sizeof reply, "OK %" PRIu64 "\n", op.seq);
		else
			snprintf(reply, sizeof reply, "ERR TX log failed: %s\n", txl.error);
		client_reply(c, reply);
		if (c->fd >= 0 && op.ok)
			txl.acked++;
		c->waiting = 0;
		if (c->fd >= 0)
			take_lines(c->in, &c->in_len, tx_line, c);
	}
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

static void txlog_command(char *arg, char *arg2)
{
	if (txl.state == TXL_OFF) {
		out_printf("ERR TXLOG no transaction log (tern.txlog is not set)\n");
		return;
	}
	if (txl_done_pipe[0] < 0) {
		out_printf("ERR TXLOG log failed: %s\n", txl.error);
		return;
	}
	char *end1 = NULL, *end2 = NULL;
	unsigned long long from = arg ? strtoull(arg, &end1, 10) : 0;
	unsigned long long count = arg2 ? strtoull(arg2, &end2, 10) : 0;
	if (arg && (!arg2 || *end1 || *end2 || from < 1 || count < 1 || count > TXL_LIST_MAX)) {
		out_printf("ERR TXLOG usage: TXLOG | TXLOG <from-seq >= 1> <count 1..%u>\n", TXL_LIST_MAX);
		return;
	}
	struct txl_op *op = txl_slot_for(arg ? OP_LIST : OP_SUMMARY);
	if (!op) {
		out_printf("ERR TXLOG busy\n");
		return;
	}
	op->seq = from;
	op->count = arg ? count : txl.acked;
	txl_submit();
}

static int chan_line(void *ctx, char *line)
{
	(void)ctx;
	char *save = NULL;
	char *cmd = strtok_r(line, " ", &save);
	char *arg = strtok_r(NULL, " ", &save);
	if (!cmd)
		return 0;
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
	} else if (!strcmp(cmd, "TXLOG")) {
		txlog_command(arg, strtok_r(NULL, " ", &save));
	} else {
		out_printf("ERR %s unknown command\n", cmd);
	}
	return 0;
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
	txl_open();
	txl_start_thread();
	fprintf(stderr, "tern-agent: wss=%" PRIu64 "MiB pages=%" PRIu64 " dirty_pps=%" PRIu64 " hb_ms=%" PRIu64
			" chan=%s tcp=%d\n",
		cfg.wss_mib, npages, cfg.dirty_pps, cfg.hb_ms, cfg.chan, listen_fd >= 0 ? cfg.port : 0);

	fill_started_ns = now_ns();
	hb_next_ns = fill_started_ns;
	dirty_last_ns = fill_started_ns;
	int chan_hup = 0;
	struct pollfd pfd[3 + MAX_CLIENTS];

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
		int txl_idx = -1;
		if (txl_done_pipe[0] >= 0) {
			pfd[n] = (struct pollfd){.fd = txl_done_pipe[0], .events = POLLIN};
			txl_idx = n++;
		}
		int first_client = n;
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (clients[i].fd >= 0 && !clients[i].waiting)
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
		if (txl_idx >= 0 && (pfd[txl_idx].revents & POLLIN))
			txl_reap();
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
