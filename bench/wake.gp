# bench/wake.gp: the wake-latency distributions as CDFs on a log x axis;
# bench/plot.sh prepares the data and calls it:
#   gnuplot -e 'out="docs/wake-latency.png"; n=3; f1="a.cdf"; t1="title"; ...' bench/wake.gp
# Each fN holds "latency_ms fraction" lines (sorted), tN is its key title,
# cN its colour ("#rrggbb");
# sub is a line under the title (what was measured, where).
if (!exists("out")) out = "docs/wake-latency.png"
if (!exists("n")) n = 0
if (!exists("sub")) sub = ""

set terminal pngcairo size 960,600 enhanced font "DejaVu Sans,10"
set output out
set title "pgwake wake latency against polling every second\n{/*0.8 ".sub."}"
set logscale x 10
set format x "%g"
set xrange [0.02:2000]
set yrange [0:1]
set ytics 0.1
set mytics 2
set grid xtics mxtics ytics lc rgb "#dddddd"
set xlabel "COMMIT of the INSERT returned -> claim returned in the worker (ms, log scale)"
set ylabel "fraction of tasks claimed within x"
set key below left Left reverse
set arrow from graph 0, first 0.5 to graph 1, first 0.5 nohead dt 3 lc rgb "#888888"
set arrow from graph 0, first 0.99 to graph 1, first 0.99 nohead dt 3 lc rgb "#888888"
set label "p50" at graph 1, first 0.5 offset 0.5, 0 left font ",8"
set label "p99" at graph 1, first 0.99 offset 0.5, 0 left font ",8"
set rmargin 6

plot for [i=1:n] value("f".i) using 1:2 with steps lw 2 lc rgb value("c".i) title value("t".i)
