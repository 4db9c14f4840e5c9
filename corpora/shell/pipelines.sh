# Pipelines in busybox sh: two stages, five stages over input the script generates, and a
# pipeline's exit status (the last stage's). Each stage is a forked shell or an exec'd applet.
# Usage: busybox sh pipelines.sh [DIR]  (writes DIR/words.txt; DIR defaults to .)
set -eu
dir=${1:-.}
expect() { [ "$2" = "$3" ] || { echo "pipelines.sh: $1: got '$2', expected '$3'" >&2; exit 1; }; }

echo hi | cat

i=0
while [ $i -lt 400 ]; do
    echo "word$((i * 7 % 23)) Word$((i % 7)) WORD$((i % 3))"
    i=$((i + 1))
done >"$dir/words.txt"
distinct=$(cat "$dir/words.txt" | tr ' ' '\n' | sort | uniq -c | wc -l)
echo "distinct words: $distinct"
expect "distinct words" "$distinct" 33
folded=$(cat "$dir/words.txt" | tr 'A-Z ' 'a-z\n' | sort | uniq -c | wc -l)
echo "distinct words, case folded: $folded"
expect "case folded" "$folded" 23
echo "most frequent:"
tr 'A-Z ' 'a-z\n' <"$dir/words.txt" | sort | uniq -c | sort -k1,1nr -k2,2 | head -3

set +e
false | true
echo "false | true: $?"
true | false
echo "true | false: $?"
