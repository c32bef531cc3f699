/*
 * porterd-xinetd: turn an xinetd configuration (xinetd.conf, and the files it
 * includes) into porterd services.d files. The whole input is read and checked
 * first; nothing is written unless all of it could be understood. What porterd
 * cannot do is said twice, as a comment in the output and on stderr, with the
 * FILE:LINE it came from, so that nothing is dropped silently.
 *
 * This file has the command line and the output (stdout, or the files of -o
 * DIR); xinetd_read reads the input, xinetd_map turns it into porterd's keys.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xinetd_conv.h"
#include "xinetd_diag.h"
#include "xinetd_emit.h"
#include "xinetd_map.h"
#include "xinetd_read.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/*
 * The section names of a services directory we are to write into, and whether
 * it has a [defaults] already: porterd takes one only. Returns the name of the
 * file with [defaults], or NULL.
 */
static char *
scan_dir(struct conv *cv, const char *dir)
{
	struct dirent *de;
	char *with_defaults = NULL;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return NULL;	/* created later */
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		char path[4096], *line = NULL;
		size_t cap = 0;
		FILE *f;

		if (de->d_name[0] == '.' || n < 6 || strcmp(de->d_name + n - 5, ".conf") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		while (getline(&line, &cap, f) >= 0) {
			char *p = line, *end;

			while (*p == ' ' || *p == '\t')
				p++;
			if (*p != '[' || (end = strchr(p, ']')) == NULL)
				continue;
			*end = '\0';
			if (strcmp(p + 1, "defaults") == 0) {
				if (with_defaults == NULL)
					with_defaults = xstrdup(path);
			} else if (!words_has(&cv->taken, p + 1)) {
				words_add(&cv->taken, p + 1);
			}
		}
		free(line);
		fclose(f);
	}
	closedir(d);
	return with_defaults;
}

/* A file name for the services of one xinetd file: NN-xinetd-NAME.conf. */
static void
out_name(const struct source *s, unsigned nn, int width, char *name, size_t len)
{
	const char *base = strrchr(s->path, '/') ? strrchr(s->path, '/') + 1 : s->path;
	size_t n = strlen(base);
	char clean[64];
	size_t k = 0;

	if (n > 5 && strcmp(base + n - 5, ".conf") == 0)
		n -= 5;
	for (size_t i = 0; i < n && k < sizeof(clean) - 1; i++)
		clean[k++] = isalnum((unsigned char)base[i]) || base[i] == '-' || base[i] == '_' ?
		    base[i] : '_';
	clean[k] = '\0';
	snprintf(name, len, "%0*u-xinetd-%s.conf", width, nn, clean);
}

static int
write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Write each file with O_EXCL, having first checked that none exists: an
 * existing file is never replaced, and a failure removes what was written.
 */
static int
write_dir(struct conv *cv, const char *dir, const char *header)
{
	struct words names = { 0 }, texts = { 0 };
	size_t nfiles = 0;
	int width = 2, rc = 0;
	unsigned first = 10;
	size_t made = 0;

	for (size_t i = 0; i < cv->nsrc; i++)
		nfiles += cv->src[i]->used;
	if (first + nfiles > 100) {
		width = 3;
		first = 100;
	}
	if (cv->defaults_out.len > 0) {
		char name[32];
		struct buf b = { 0 };

		snprintf(name, sizeof(name), "%0*u-xinetd-defaults.conf", width, 0);
		buf_add(&b, "%s%s", header, cv->defaults_out.s);
		words_add(&names, name);
		words_add(&texts, b.s);
		free(b.s);
	}
	for (size_t i = 0, nn = first; i < cv->nsrc; i++) {
		struct source *s = cv->src[i];
		char name[128];
		struct buf b = { 0 };

		if (!s->used)
			continue;
		out_name(s, (unsigned)nn++, width, name, sizeof(name));
		buf_add(&b, "%s", header);
		emit_commentf(&b, "From %s.", s->path);
		buf_add(&b, "%s", s->out.s);
		words_add(&names, name);
		words_add(&texts, b.s);
		free(b.s);
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "porterd-xinetd: %s: %s\n", dir, strerror(errno));
		rc = -1;
		goto out;
	}
	for (size_t i = 0; i < names.n; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, names.v[i]);
		if (lstat(path, &st) == 0) {
			fprintf(stderr, "porterd-xinetd: %s exists already; nothing written (remove "
			    "it, or write to another directory)\n", path);
			rc = -1;
		}
	}
	if (rc < 0)
		goto out;
	for (made = 0; made < names.n; made++) {
		char path[4096];
		int fd;

		snprintf(path, sizeof(path), "%s/%s", dir, names.v[made]);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0) {
			fprintf(stderr, "porterd-xinetd: %s: %s\n", path, strerror(errno));
			rc = -1;
			break;
		}
		if (write_all(fd, texts.v[made], strlen(texts.v[made])) < 0 || close(fd) < 0) {
			fprintf(stderr, "porterd-xinetd: %s: %s\n", path, strerror(errno));
			unlink(path);
			rc = -1;
			break;
		}
	}
	if (rc < 0) {
		while (made-- > 0) {
			char path[4096];

			snprintf(path, sizeof(path), "%s/%s", dir, names.v[made]);
			unlink(path);
		}
	} else {
		for (size_t i = 0; i < names.n; i++)
			diag_info(cv, &(struct where){ dir, 0 }, "wrote %s", names.v[i]);
	}
out:
	words_clear(&names);
	words_clear(&texts);
	return rc;
}

static void
usage(void)
{
	fprintf(stderr, "usage: porterd-xinetd [-o DIR] [FILE]\n");
	exit(EXIT_USAGE);
}

static void
help(void)
{
	printf("usage: porterd-xinetd [-o DIR] [FILE]\n"
	    "Convert an xinetd configuration (FILE, default /etc/xinetd.conf, and the\n"
	    "files it includes) into porterd services.d files.\n"
	    "  -o DIR  write NN-xinetd-NAME.conf files into DIR (never replacing one);\n"
	    "          without -o, print one services.d stream on stdout\n"
	    "  -V      print the version\n"
	    "Then check the result with: porterd -t -d DIR\n");
	exit(0);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = "/etc/xinetd.conf", *dir = NULL;
	struct conv cv;
	struct buf header = { 0 };
	char *with_defaults = NULL;
	int c, status = 0;

	while ((c = getopt_long(argc, argv, "ho:V", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': help(); break;
		case 'o': dir = optarg; break;
		case 'V': printf("porterd-xinetd %s\n", PACKAGE_VERSION); return 0;
		default: usage();
		}
	}
	if (argc - optind > 1)
		usage();
	if (optind < argc)
		file = argv[optind];
	if (dir != NULL && *dir == '\0')
		usage();

	conv_init(&cv);
	if (dir != NULL && (with_defaults = scan_dir(&cv, dir)) != NULL)
		cv.fold = 1;
	if (read_config(&cv, file) < 0) {
		fprintf(stderr, "porterd-xinetd: %s: %s\n", file, strerror(errno));
		exit(EXIT_SYSTEM);
	}
	map_defaults(&cv, with_defaults);
	for (size_t i = 0; i < cv.nsvc; i++)
		if (!cv.svc[i]->cut)	/* what it lacks would only be reported again */
			map_service(&cv, cv.svc[i]);

	if (cv.nerrors > 0) {
		fputs(cv.errors.s, stderr);
		fprintf(stderr, "porterd-xinetd: %s: %zu error%s; nothing written\n", file,
		    cv.nerrors, cv.nerrors == 1 ? "" : "s");
		status = EXIT_INPUT;
		goto out;
	}
	emit_commentf(&header, "porterd services converted from xinetd's configuration by "
	    "porterd-xinetd %s.", PACKAGE_VERSION);
	emit_commentf(&header, "Check them with porterd -t before porterd reads them.");
	if (dir == NULL) {
		/* One stream: the [defaults] first, then each file's services in order. */
		fputs(header.s, stdout);
		if (cv.defaults_out.len > 0)
			printf("\n%s", cv.defaults_out.s);
		for (size_t i = 0; i < cv.nsrc; i++)
			if (cv.src[i]->used) {
				struct buf from = { 0 };

				emit_commentf(&from, "From %s.", cv.src[i]->path);
				printf("\n%s%s", from.s, cv.src[i]->out.s);
				free(from.s);
			}
		if (fflush(stdout) != 0 || ferror(stdout)) {
			fprintf(stderr, "porterd-xinetd: stdout: %s\n", strerror(errno));
			status = EXIT_SYSTEM;
		}
	} else if (write_dir(&cv, dir, header.s) < 0) {
		status = EXIT_SYSTEM;
	}
	if (status == 0 && cv.notes.len > 0)
		fputs(cv.notes.s, stderr);
	if (status == 0)
		fprintf(stderr, "porterd-xinetd: %zu service%s converted (%zu with enabled = no), "
		    "%zu left out, %zu note%s on what is not carried over\n", cv.converted,
		    cv.converted == 1 ? "" : "s", cv.disabled_count, cv.left_out, cv.nnotes,
		    cv.nnotes == 1 ? "" : "s");
out:
	conv_free(&cv);
	free(header.s);
	free(with_defaults);
	return status;
}
