# Processes started by busybox sh and its applets: background jobs and `wait` (for all, and for
# one pid with its exit status), xargs running a command per batch, find -exec, and the time
# applet (its report goes to stderr and its figures vary, so only its `real` line is counted).
# Usage: busybox sh jobs.sh [DIR]  (writes DIR/jobs/ and DIR/tree/; DIR defaults to .)
set -eu
cd "${1:-.}"
expect() { [ "$2" = "$3" ] || { echo "jobs.sh: $1: got '$2', expected '$3'" >&2; exit 1; }; }

mkdir -p jobs
for i in 1 2 3; do
    (echo "job $i ran" >"jobs/$i.out") &
done
wait
cat jobs/1.out jobs/2.out jobs/3.out
(exit 5) &
status=0
wait $! || status=$?
echo "background job's exit status: $status"
expect "background exit" "$status" 5

seq 1 7 | xargs echo
# echo runs inside xargs (a busybox NOFORK applet); sh -c is a process xargs starts per batch.
seq 1 7 | xargs -n 3 sh -c 'echo "batch of $#: $*"' sh
printf 'x\ny\n' | xargs -I{} echo "item {}"

mkdir -p tree/sub/deeper
echo one >tree/a.txt
echo two two >tree/sub/b.txt
echo three three three >tree/sub/deeper/c.txt
echo not text >tree/sub/d.dat
find tree -name '*.txt' -exec wc -w {} \; | sort
find tree -type f -exec cat {} + | sort
files=$(find tree -type f | wc -l)
expect "files found" "$files" 4

reals=$(time sh -c 'exit 0' 2>&1 >/dev/null | grep -c '^real')
echo "time printed $reals real line"
expect "time's real lines" "$reals" 1
