# busybox httpd serving files to busybox wget over loopback TCP, in one shell: a page to
# stdout, one to a file, and a missing one (404). httpd runs under a subshell that waits for
# it and kills it when told to, so that its end is reported by `wait` alone (a shell that
# reaps a killed job elsewhere prints "Terminated", natively at a time that varies) and no
# pid is written (its length would differ). The port comes from the shell's pid, so that
# native runs do not collide; it is never printed.
# Usage: busybox sh http.sh  (writes www/ and fetched.html in the working directory)
set -eu
port=$((20000 + $$ % 20000))
mkdir -p www
printf 'hello from httpd\n' >www/index.html
# A fixed time: httpd's Last-Modified and ETag come from it, and so would the instructions
# that format them.
touch -d '2024-01-01 00:00:00' www/index.html
(
    httpd -f -p 127.0.0.1:$port -h www &
    server=$!
    trap 'kill $server' TERM
    status=0
    # The first wait ends with the TERM this shell traps (which kills httpd), the second
    # with httpd.
    wait $server || wait $server || status=$?
    echo "httpd ended: $status"
) &
keeper=$!
sleep 1
wget -q -O - http://127.0.0.1:$port/index.html
wget -q -O fetched.html http://127.0.0.1:$port/index.html
cat fetched.html
status=0
wget -q -O - http://127.0.0.1:$port/missing.html 2>&1 || status=$?
echo "missing file: status $status"
kill $keeper
wait $keeper
