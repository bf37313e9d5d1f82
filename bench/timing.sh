# Sourced by the bench scripts: runs a command $repeat times with /usr/bin/time and keeps, by
# name, the best seconds (secs), the median seconds (median) and the peak RSS in KiB of the
# best run (rss). The caller sets $work and $repeat and defines `before_each` (what to clear
# between runs).
declare -A secs median rss

# timed NAME OUTPUT COMMAND...: each run's stdout goes to OUTPUT. A failed run is reported on
# stderr and timed like the others; the status is 1 when any run failed.
timed() {
  local name=$1 output=$2; shift 2
  local i t all="" status=0
  for ((i = 0; i < repeat; i++)); do
    before_each
    /usr/bin/time -o "$work/time" -f "%e %M" "$@" > "$output" 2> "$work/stderr" \
      || { echo "$name failed: $(tail -3 "$work/stderr")" >&2; status=1; }
    t=$(tail -1 "$work/time")
    all="$all ${t% *}"
    if [ -z "${secs[$name]:-}" ] || awk -v a="${t% *}" -v b="${secs[$name]}" 'BEGIN { exit !(a < b) }'; then
      secs[$name]=${t% *}; rss[$name]=${t#* }
    fi
  done
  median[$name]=$(tr ' ' '\n' <<<"$all" | sed '/^$/d' | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
  return $status
}
