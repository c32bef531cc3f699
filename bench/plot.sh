#!/usr/bin/env bash
# bench/plot.sh [DATA [PNG]]: connections/s against concurrency, one line per
# contender, from the data file that report.py writes (a header line "c NAME...",
# then one line per concurrency). Needs gnuplot (Debian: gnuplot-nox).
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
DAT=${1:-$BENCH/.run/throughput.dat}
PNG=${2:-$BENCH/throughput.png}
[ -r "$DAT" ] || { echo "plot.sh: no data file $DAT (run bench/run.sh first)" >&2; exit 1; }
ncol=$(head -1 "$DAT" | wc -w)
xmin=$(awk 'NR == 2 { print $1 }' "$DAT")
xmax=$(awk 'NR > 1 { x = $1 } END { print x }' "$DAT")
xtics=$(awk 'NR > 1 { printf "%s\"%s\" %s", sep, $1, $1; sep = ", " }' "$DAT")
term="pngcairo size 1000,560 font 'sans,10'"
gnuplot -e "set terminal pngcairo" >/dev/null 2>&1 || term="png size 1000,560"
gnuplot <<GP
set terminal $term
set output '$PNG'
set title 'Connections per second against concurrency (median over rounds)'
set xlabel 'concurrent connections'
set ylabel 'connections/s'
set logscale x 2
set xrange [$xmin / 1.3 : $xmax * 1.3]
set xtics ($xtics)
set yrange [0:*]
set grid
set key outside right top
set datafile missing 'NaN'
# Ten distinct colours and point shapes: gnuplot's default eight would repeat.
set linetype 1 lc rgb '#000000' lw 3 pt 7
set linetype 2 lc rgb '#1f77b4' lw 2 pt 5
set linetype 3 lc rgb '#ff7f0e' lw 2 pt 9
set linetype 4 lc rgb '#2ca02c' lw 2 pt 11
set linetype 5 lc rgb '#d62728' lw 3 pt 13
set linetype 6 lc rgb '#9467bd' lw 2 pt 4
set linetype 7 lc rgb '#8c564b' lw 2 pt 6
set linetype 8 lc rgb '#e377c2' lw 2 pt 8
set linetype 9 lc rgb '#7f7f7f' lw 2 pt 10
set linetype 10 lc rgb '#17becf' lw 2 pt 12
plot for [i=2:$ncol] '$DAT' using 1:i with linespoints linetype (i - 1) title columnheader(i)
GP
