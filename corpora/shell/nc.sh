# busybox nc at both ends over loopback TCP: a client's stdin to a listener's stdout, then
# an echo server (nc -l -e cat) that sends a client's lines back. The ports come from the
# shell's pid, so that native runs do not collide; they are never printed.
# Usage: busybox sh nc.sh  (writes received.txt in the working directory)
set -eu
port=$((20000 + $$ % 20000))
# The listener's stdin stays open while the client runs: at its end of file it would shut
# its side down, racing the client's own (natively, which comes first is the host's
# schedule).
sleep 2 | nc -l -p $port >received.txt &
listener=$!
sleep 1
printf 'line one\nline two\n' | nc 127.0.0.1 $port
wait $listener
cat received.txt
nc -l -p $((port + 1)) -e cat &
echo_server=$!
sleep 1
printf 'echo me\n' | nc 127.0.0.1 $((port + 1))
wait $echo_server
echo "both ends done"
