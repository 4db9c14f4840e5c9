# Shell control in busybox sh: subshells `( ... )` (a forked shell whose variables and exit do
# not reach the parent), command substitution `$(...)`, `&&` and `||`, and here-documents.
# Usage: busybox sh control.sh  (writes nothing)
set -eu
expect() { [ "$2" = "$3" ] || { echo "control.sh: $1: got '$2', expected '$3'" >&2; exit 1; }; }

x=outer
(x=inner; echo "in the subshell: $x")
echo "after the subshell: $x"
expect "subshell variable" "$x" outer
status=0
(exit 3) || status=$?
echo "subshell exit status: $status"
expect "subshell exit" "$status" 3

bytes=$(echo abc | wc -c)
echo "\$(echo abc | wc -c): $bytes"
expect "command substitution" "$bytes" 4
nested=$(echo "$(echo inner)-outer")
echo "nested: $nested"
expect "nested substitution" "$nested" inner-outer

true && echo "true && ran"
false && echo "false && ran" || echo "false || ran"
false || true && echo "false || true && ran"

cat <<EOF
a here-document, with \$x expanded: $x
EOF
cat <<'EOF'
a quoted here-document: $x stays
EOF
sum=0
while read -r number name; do
    echo "$name is $number"
    sum=$((sum + number))
done <<EOF
1 one
2 two
3 three
EOF
echo "here-document sum: $sum"
expect "here-document sum" "$sum" 6
