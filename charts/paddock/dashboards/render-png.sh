#!/usr/bin/env bash
# Renders the main panels of Paddock's Grafana dashboard (paddock.json) as one PNG with gnuplot,
# from the same queries against a Prometheus, over a time range: for README pictures and for a
# look without Grafana.
#
#   render-png.sh PROMETHEUS_URL START END OUT.png     (START/END: Unix seconds)
#
# Panels: the first four of the dashboard (runs by phase, runs by team and phase, spend against
# budget per run and per team). Needs curl, jq and gnuplot.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
url=$1 start=$2 end=$3 out=$4
step=$(( (end - start) / 200 )); [ "$step" -ge 1 ] || step=1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
plots=()
for i in 0 1 2 3; do
  title=$(jq -r ".panels[$i].title" "$here/paddock.json")
  expr=$(jq -r ".panels[$i].targets[0].expr" "$here/paddock.json" | sed 's/\$namespace/.*/g')
  legend=$(jq -r ".panels[$i].targets[0].legendFormat" "$here/paddock.json")
  curl -sf --get "$url/api/v1/query_range" --data-urlencode "query=$expr" \
    --data-urlencode "start=$start" --data-urlencode "end=$end" --data-urlencode "step=$step" > "$tmp/$i.json"
  n=$(jq '.data.result | length' "$tmp/$i.json")
  cmd=""
  for ((s = 0; s < n; s++)); do
    # The series' name as Grafana's legend would write it.
    name=$(jq -r --arg f "$legend" ".data.result[$s].metric as \$m | \$f | gsub(\"\\\\{\\\\{ *(?<k>[a-z_]+) *\\\\}\\\\}\"; (\$m[.k] // \"\"))" "$tmp/$i.json")
    jq -r ".data.result[$s].values[] | \"\\(.[0] - $start) \\(.[1])\"" "$tmp/$i.json" > "$tmp/$i-$s.dat"
    cmd+="${cmd:+, }'$tmp/$i-$s.dat' using 1:2 with lines lw 2 title '${name//\'/}'"
  done
  [ -n "$cmd" ] || cmd="NaN title 'no data'"
  plots+=("set title '${title//\'/}'; plot $cmd")
done
{
  echo "set terminal pngcairo size 1400,900 font 'sans,10' noenhanced"
  echo "set output '$out'"
  echo "set multiplot layout 2,2 title 'Paddock (charts/paddock/dashboards/paddock.json)'"
  echo "set key outside below; set grid; set xlabel 'seconds'"
  for p in "${plots[@]}"; do echo "$p"; done
  echo "unset multiplot"
} > "$tmp/plot.gp"
gnuplot "$tmp/plot.gp"
echo "$out"
