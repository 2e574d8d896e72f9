/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_top.c - ipcq top: every queue at a glance, refreshed, in the manner
 * of top(1): depth, backlog, messages in and out per second, ring use,
 * receivers, listeners and delivery mode.
 *
 * Rates are the change of the counters sent and received between two
 * snapshots over the time between them (CLOCK_MONOTONIC), so the first
 * snapshot, and a queue's first appearance, show none ("-").  A queue is
 * matched to its previous snapshot by name and id: one deleted and made
 * anew (a new id), or whose counters went back, starts afresh.
 *
 * On a terminal the view is drawn with plain ANSI escape sequences (no
 * curses, so it needs no terminfo and works over any ssh): the alternate
 * screen, the cursor hidden, each line cut to the terminal's width and
 * cleared to its end, as many queues as there are rows, the whole screen
 * written at once.  The terminal is put in non-canonical mode without
 * echo to read keys one at a time (ISIG stays: ^C is SIGINT), and is given
 * back as it was on every way out: 'q' or SIGINT (status 0), SIGTERM and
 * SIGHUP (after which ipcq dies of the signal), an error; and around a
 * stop (^Z: given back, stopped, taken again when continued).  Signals,
 * SIGWINCH included (redraw at the size TIOCGWINSZ gives), come through a
 * signalfd polled beside standard input, as in recv: nothing runs in a
 * signal handler.  While the daemon cannot be reached the view says so
 * and tries again at each refresh.
 *
 * Elsewhere (standard output not a terminal, or -b), each snapshot is
 * plain lines, flushed at once, with exact byte counts for scripts; a
 * signal ends it the default way, and so does an unreachable daemon.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "textbuf.h"
#include "util.h"

#define TOP_DELAY_MS_DEFAULT 1000
#define TOP_HEADER_ROWS 4 /* summary, status, blank, column titles */
#define NAME_WIDTH_MIN 8
#define COLUMNS_WIDTH 70 /* the columns after the name, with their spaces */
#define LINE_MAX_BYTES 512

enum {
	OPT_DELAY = 'd',
	OPT_ITERATIONS = 'n',
	OPT_BATCH = 'b',
};

/* What a wait between snapshots ended with. */
enum top_wake {
	WAKE_REFRESH, /* time for the next snapshot, or the user asked for it */
	WAKE_QUIT,    /* 'q', SIGINT, SIGTERM or SIGHUP (t->signo says which) */
};

struct top_snapshot {
	ipcq_stats *queues; /* sorted by name */
	size_t n;
	uint64_t at_ns;
};

struct top {
	struct cli *cli;
	int delay_ms;
	unsigned long iterations; /* 0: until quit */
	bool batch;
	struct top_snapshot prev, cur;
	char error[PATH_MAX + 128]; /* why the last snapshot failed (terminal view) */
	int signo;       /* SIGTERM or SIGHUP that ended the view, to die of */
	/* the terminal view */
	bool keys;    /* standard input is a terminal to read keys from */
	bool raw;     /* its settings are changed; saved holds them */
	bool screen;  /* the alternate screen is on */
	struct termios saved;
	unsigned rows, cols;
	int signal_fd;
	struct textbuf out;
	unsigned lines; /* in out so far */
};

static void snapshot_free(struct top_snapshot *s)
{
	free(s->queues);
	*s = (struct top_snapshot){ 0 };
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(((const ipcq_stats *)a)->name, ((const ipcq_stats *)b)->name);
}

/* Take a new snapshot, the current one becoming the previous; on failure
 * both are dropped (rates start afresh) and the connection too, so that
 * the next try connects again. */
static int take_snapshot(struct top *t)
{
	ipcq_stats *all = NULL;
	int n;

	if (!t->cli->client) {
		n = ipcq_connect(&t->cli->client, t->cli->socket_path);
		if (n < 0) {
			t->cli->client = NULL;
			goto failed;
		}
	}
	n = cli_list_queues(t->cli, &all);
	if (n < 0) {
		cli_disconnect(t->cli);
		goto failed;
	}
	qsort(all, (size_t)n, sizeof(*all), compare_names);
	snapshot_free(&t->prev);
	t->prev = t->cur;
	t->cur = (struct top_snapshot){ .queues = all, .n = (size_t)n, .at_ns = now_ns(CLOCK_MONOTONIC) };
	return 0;
failed:
	snapshot_free(&t->prev);
	snapshot_free(&t->cur);
	return n;
}

/* The queue's counters one snapshot ago, if they can be compared. */
static const ipcq_stats *previous_of(const struct top *t, const ipcq_stats *st)
{
	const ipcq_stats *p;

	if (!t->prev.n)
		return NULL;
	p = bsearch(st, t->prev.queues, t->prev.n, sizeof(*st), compare_names);
	if (!p || p->id != st->id || p->sent > st->sent || p->received > st->received)
		return NULL;
	return p;
}

static void format_rate(char *buf, size_t cap, bool known, double rate)
{
	if (known)
		snprintf(buf, cap, "%.1f", rate);
	else
		snprintf(buf, cap, "-");
}

/* 1023, 1.5K, 64.0M: bytes for the terminal view. */
static void format_bytes(char *buf, size_t cap, uint64_t v)
{
	static const char units[] = "KMGTPE";
	double d = (double)v;
	int u = -1;

	if (v < 1024) {
		snprintf(buf, cap, "%" PRIu64, v);
		return;
	}
	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	snprintf(buf, cap, "%.1f%c", d, units[u]);
}

static const char *mode_of(const ipcq_stats *st)
{
	if (st->quarantined)
		return "quar";
	return st->delivery == 1 ? "alo" : st->delivery == 0 ? "amo" : "?";
}

/* One line: on the terminal cut to its width and cleared to its end, and
 * with no newline after the last, which would scroll the screen. */
static void add_line(struct top *t, bool reverse, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_line(struct top *t, bool reverse, const char *fmt, ...)
{
	char line[LINE_MAX_BYTES];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if (t->batch) {
		textbuf_add(&t->out, line, (size_t)n);
		textbuf_addc(&t->out, '\n');
		return;
	}
	if ((unsigned)n > t->cols)
		n = (int)t->cols;
	if (t->lines++)
		textbuf_addc(&t->out, '\n');
	if (reverse)
		textbuf_adds(&t->out, "\033[7m");
	textbuf_add(&t->out, line, (size_t)n);
	/* a reverse-video title runs across the screen */
	if (reverse)
		textbuf_addf(&t->out, "%*s\033[m", (int)(t->cols - (unsigned)n), "");
	textbuf_adds(&t->out, "\033[K");
}

/* The summary line: time, queues, and the rates of all queues together. */
static void add_summary(struct top *t)
{
	char when[32], in[32], out[32];
	double in_rate = 0, out_rate = 0, dt = 0;
	uint64_t depth = 0;
	bool known = false;
	struct tm tm;
	time_t now = time(NULL);

	localtime_r(&now, &tm);
	strftime(when, sizeof(when), t->batch ? "%Y-%m-%dT%H:%M:%S" : "%H:%M:%S", &tm);
	if (t->prev.n)
		dt = (double)(t->cur.at_ns - t->prev.at_ns) / 1e9;
	for (size_t i = 0; i < t->cur.n; i++) {
		const ipcq_stats *st = &t->cur.queues[i], *p = previous_of(t, st);

		depth += st->depth;
		if (p && dt > 0) {
			in_rate += (double)(st->sent - p->sent) / dt;
			out_rate += (double)(st->received - p->received) / dt;
			known = true;
		}
	}
	format_rate(in, sizeof(in), known, in_rate);
	format_rate(out, sizeof(out), known, out_rate);
	add_line(t, false, "ipcq top - %s - %zu queues, %" PRIu64 " messages waiting - msgs/s in %s, out %s", when,
	         t->cur.n, depth, in, out);
}

static void add_queue(struct top *t, const ipcq_stats *st, int name_width, double dt)
{
	const ipcq_stats *p = previous_of(t, st);
	char in[32], out[32], ring_pct[16], ring_used[32];
	int len = (int)strlen(st->name);

	format_rate(in, sizeof(in), p && dt > 0, p && dt > 0 ? (double)(st->sent - p->sent) / dt : 0);
	format_rate(out, sizeof(out), p && dt > 0, p && dt > 0 ? (double)(st->received - p->received) / dt : 0);
	if (st->geo.ring_size)
		snprintf(ring_pct, sizeof(ring_pct), "%.1f", 100.0 * (double)st->ring_used / (double)st->geo.ring_size);
	else
		snprintf(ring_pct, sizeof(ring_pct), "-");
	if (t->batch)
		snprintf(ring_used, sizeof(ring_used), "%" PRIu64, st->ring_used);
	else
		format_bytes(ring_used, sizeof(ring_used), st->ring_used);
	/* a name longer than its column ends in '+' */
	add_line(t, false, "%-*.*s%s %8" PRIu64 " %8" PRIu64 " %9s %9s %6s %9s %4" PRIu32 " %4" PRIu32 " %s",
	         len > name_width ? name_width - 1 : name_width, len > name_width ? name_width - 1 : len, st->name,
	         len > name_width ? "+" : "", st->depth, st->backlog, in, out, ring_pct, ring_used, st->receivers,
	         st->listeners, mode_of(st));
}

/* The snapshot as text in t->out: a screen, or a batch of lines. */
static void render(struct top *t)
{
	int name_width = NAME_WIDTH_MIN;
	size_t shown = t->cur.n;
	double dt = 0;

	t->out.len = 0;
	t->lines = 0;
	for (size_t i = 0; i < t->cur.n; i++)
		name_width = MAX(name_width, (int)strlen(t->cur.queues[i].name));
	if (!t->batch) {
		name_width = MIN(name_width, MAX(NAME_WIDTH_MIN, (int)t->cols - COLUMNS_WIDTH));
		textbuf_adds(&t->out, "\033[H");
	}
	if (t->prev.n)
		dt = (double)(t->cur.at_ns - t->prev.at_ns) / 1e9;
	add_summary(t);
	if (!t->batch) {
		if (t->error[0])
			add_line(t, false, "%s", t->error);
		else
			add_line(t, false, "%s - every %.1f s - q: quit, space: refresh", t->cli->socket_path,
			         t->delay_ms / 1000.0);
		add_line(t, false, "%s", "");
		/* the queues that fit, and a line saying how many do not */
		if (t->rows <= TOP_HEADER_ROWS)
			shown = 0;
		else if (shown > t->rows - TOP_HEADER_ROWS)
			shown = t->rows - TOP_HEADER_ROWS - 1;
	}
	add_line(t, true, "%-*s %8s %8s %9s %9s %6s %9s %4s %4s %s", name_width, "QUEUE", "DEPTH", "BACKLOG",
	         "IN/s", "OUT/s", "RING%", "RING_USED", "RECV", "LSTN", "MODE");
	for (size_t i = 0; i < shown; i++)
		add_queue(t, &t->cur.queues[i], name_width, dt);
	if (!t->batch && shown < t->cur.n && t->rows > TOP_HEADER_ROWS)
		add_line(t, false, "(%zu more queues)", t->cur.n - shown);
	if (t->batch)
		textbuf_addc(&t->out, '\n');
	else
		textbuf_adds(&t->out, "\033[J");
}

static int draw(struct top *t)
{
	render(t);
	if (t->out.failed)
		return cli_error("out of memory");
	fwrite(t->out.data, 1, t->out.len, stdout);
	return cli_finish_stdout();
}

static void update_size(struct top *t)
{
	struct winsize ws;

	t->rows = 24;
	t->cols = 80;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
		t->rows = ws.ws_row;
		t->cols = MIN(ws.ws_col, (unsigned)LINE_MAX_BYTES - 1);
	}
}

static void terminal_enter(struct top *t)
{
	struct termios raw;

	if (t->keys && tcgetattr(STDIN_FILENO, &t->saved) == 0) {
		raw = t->saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		t->raw = tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0;
	}
	/* the alternate screen, the cursor hidden */
	fputs("\033[?1049h\033[?25l", stdout);
	fflush(stdout);
	t->screen = true;
	update_size(t);
}

static void terminal_leave(struct top *t)
{
	if (t->screen) {
		fputs("\033[?25h\033[?1049l", stdout);
		fflush(stdout);
		t->screen = false;
	}
	if (t->raw) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &t->saved);
		t->raw = false;
	}
}

static void top_deinit(struct top *t)
{
	terminal_leave(t);
	snapshot_free(&t->prev);
	snapshot_free(&t->cur);
	textbuf_deinit(&t->out);
	if (t->signal_fd >= 0)
		close(t->signal_fd);
	t->signal_fd = -1;
}

/* ^Z: give the terminal back, stop, and take it again once continued. */
static void suspend(struct top *t)
{
	terminal_leave(t);
	raise(SIGSTOP);
	terminal_enter(t);
}

/* Wait until deadline_ns for keys and signals on the terminal view; a
 * negative errno, or what ended the wait. */
static int wait_interactive(struct top *t, uint64_t deadline_ns)
{
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = t->signal_fd, .events = POLLIN },
			{ .fd = STDIN_FILENO, .events = POLLIN },
		};
		struct signalfd_siginfo si;
		char keys[64];
		ssize_t n;
		int r;

		r = poll(pfd, t->keys ? 2 : 1, cli_wait_ms(-1, deadline_ns));
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r == 0)
			return WAKE_REFRESH;
		if (r < 0)
			continue;
		if (pfd[0].revents && read(t->signal_fd, &si, sizeof(si)) == sizeof(si)) {
			switch (si.ssi_signo) {
			case SIGWINCH:
				update_size(t);
				break;
			case SIGTSTP:
				suspend(t);
				break;
			case SIGINT:
				return WAKE_QUIT;
			default: /* SIGTERM, SIGHUP */
				t->signo = (int)si.ssi_signo;
				return WAKE_QUIT;
			}
			r = draw(t);
			if (r)
				return -EIO;
		}
		if (t->keys && pfd[1].revents) {
			n = read(STDIN_FILENO, keys, sizeof(keys));
			if (n <= 0 && !(n < 0 && errno == EINTR))
				t->keys = false; /* its end, or gone: ^C still quits */
			for (ssize_t i = 0; i < n; i++) {
				if (keys[i] == 'q' || keys[i] == 'Q')
					return WAKE_QUIT;
				if (keys[i] == ' ')
					return WAKE_REFRESH;
			}
		}
	}
}

static void sleep_until(uint64_t deadline_ns)
{
	struct timespec ts = { .tv_sec = (time_t)(deadline_ns / 1000000000u),
		               .tv_nsec = (long)(deadline_ns % 1000000000u) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static int run(struct top *t)
{
	uint64_t next = now_ns(CLOCK_MONOTONIC);
	unsigned long done = 0;
	int r;

	for (;;) {
		r = take_snapshot(t);
		if (r < 0 && t->batch)
			return cli_fail_request(t->cli, r, "cannot list the queues");
		if (r < 0)
			snprintf(t->error, sizeof(t->error), "cannot reach ipcbrokerd at %s: %s; trying again",
			         t->cli->socket_path, ipcq_strerror(r));
		else
			t->error[0] = '\0';
		r = draw(t);
		if (r)
			return r;
		if (t->iterations && ++done >= t->iterations)
			return CLI_EXIT_OK;
		/* a steady cadence, unless a refresh came early or late */
		next += (uint64_t)t->delay_ms * 1000000u;
		if (next < now_ns(CLOCK_MONOTONIC))
			next = now_ns(CLOCK_MONOTONIC) + (uint64_t)t->delay_ms * 1000000u;
		if (t->batch) {
			sleep_until(next);
			continue;
		}
		r = wait_interactive(t, next);
		if (r < 0)
			return r == -EIO ? CLI_EXIT_ERROR : cli_error("waiting for keys: %s", strerror(-r));
		if (r == WAKE_QUIT)
			return CLI_EXIT_OK;
		next = MIN(next, now_ns(CLOCK_MONOTONIC));
	}
}

/* The terminal view takes its signals on a descriptor. */
static int setup_signals(struct top *t)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGWINCH);
	sigaddset(&mask, SIGTSTP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	t->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	return t->signal_fd < 0 ? -errno : 0;
}

int cmd_top(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "delay", required_argument, NULL, OPT_DELAY },
		{ "iterations", required_argument, NULL, OPT_ITERATIONS },
		{ "batch", no_argument, NULL, OPT_BATCH },
		CLI_GLOBAL_OPTIONS,
		{ 0 },
	};
	__attribute__((cleanup(top_deinit))) struct top t = {
		.cli = cli,
		.delay_ms = TOP_DELAY_MS_DEFAULT,
		.signal_fd = -1,
	};
	int opt, r;

	while ((opt = cli_getopt(cli, argc, argv, ":d:n:b" CLI_GLOBAL_SHORT, longopts)) != -1) {
		switch (opt) {
		case OPT_DELAY:
			if (cli_parse_timeout(optarg, &t.delay_ms) < 0 || t.delay_ms < 10)
				return cli_usage_error(cli, "bad delay '%s' (seconds, at least 0.01)", optarg);
			break;
		case OPT_ITERATIONS:
			if (cli_parse_uint(optarg, ULONG_MAX, &t.iterations) < 0 || t.iterations == 0)
				return cli_usage_error(cli, "bad number of iterations '%s' (1 or more)", optarg);
			break;
		case OPT_BATCH:
			t.batch = true;
			break;
		default:
			r = cli_common_option(cli, opt, argv);
			if (r >= 0)
				return r;
		}
	}
	if (optind < argc)
		return cli_usage_error(cli, "too many arguments");
	t.batch = t.batch || !isatty(STDOUT_FILENO);
	r = cli_connect(cli);
	if (r)
		return r;
	if (!t.batch) {
		r = setup_signals(&t);
		if (r < 0)
			return cli_error("cannot set up signals: %s", strerror(-r));
		t.keys = isatty(STDIN_FILENO);
		terminal_enter(&t);
	}
	r = run(&t);
	top_deinit(&t);
	if (t.signo) {
		cli_disconnect(cli);
		cli_die_of_signal(t.signo);
	}
	return r;
}
