#ifndef PORTERD_CONFIG_LINE_H
#define PORTERD_CONFIG_LINE_H

/*
 * The longest physical line of a services.d file. inih reads into a fixed
 * buffer (INI_MAX_LINE, 200 bytes in Debian's build) and splits longer lines;
 * config_read hands such a line to inih shortened and keeps its value whole,
 * so a line is limited only by this. porterd-xinetd writes no longer lines.
 */
#define CONFIG_LINE_MAX 65535

#endif
