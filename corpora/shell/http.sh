# busybox httpd serving files to busybox wget over loopback TCP, in one shell: a page to
# stdout, one to a file, and a missing one (404). No pid is written (its length would
# differ). The port comes from the shell's pid, so that native runs do not collide; it is
# never printed.
# Usage: busybox sh http.sh  (writes www/ and fetched.html in the working directory)
set -eu
port=$((20000 + $$ % 20000))
mkdir -p www
printf 'hello from httpd\n' >www/index.html
# A fixed time: httpd's Last-Modified and ETag come from it, and so would the instructions
# that format them.
touch -d '2024-01-01 00:00:00' www/index.html
# The requests run on the left of a pipe and, when done, tell the keeper on its right to
# end httpd, which it then waits for. SIGPIPE ends it: for a job a signal ended, ash prints
# its name ("Terminated"), natively or not depending on when it reaps the job, except for
# SIGINT and SIGPIPE. The fetched pages go to the script's stdout (fd 3).
exec 3>&1
(
    sleep 1
    wget -q -O - http://127.0.0.1:$port/index.html >&3
    wget -q -O fetched.html http://127.0.0.1:$port/index.html
    cat fetched.html >&3
    status=0
    wget -q -O - http://127.0.0.1:$port/missing.html >&3 2>&1 || status=$?
    echo "missing file: status $status" >&3
    echo done
) | (
    httpd -f -p 127.0.0.1:$port -h www </dev/null &
    server=$!
    read -r _
    kill -PIPE $server
    status=0
    wait $server || status=$?
    echo "httpd ended: $status"
)
