# The shell pipeline benchmark: how many distinct words FILE holds, through five processes
# joined by four pipes. build/inputs/words.txt (10 MB, 4,096 distinct words) is its input.
# Usage: busybox sh word_count.sh FILE
set -eu
cat "$1" | tr ' ' '\n' | sort | uniq -c | wc -l
