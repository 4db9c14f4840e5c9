# Redis in one shell over loopback TCP: redis-server, redis-cli's SET and GET, then
# redis-benchmark's SET and GET (REQUESTS of each, over CLIENTS connections; its figures,
# which are the clock's, to /dev/null), then redis-cli's SHUTDOWN. The port comes from the
# shell's pid; it is never printed. Needs build/redis (fetch-redis) on PATH and
# LD_LIBRARY_PATH. Usage: busybox sh redis.sh [REQUESTS] [CLIENTS]
set -eu
port=$((20000 + $$ % 20000))
redis-server --port $port --bind 127.0.0.1 --save '' --appendonly no --logfile /dev/null &
server=$!
sleep 1
redis-cli -p $port set greeting hello
redis-cli -p $port get greeting
redis-benchmark -p $port -n "${1:-1000}" -c "${2:-1}" -t set,get -q >/dev/null
redis-cli -p $port dbsize
redis-cli -p $port shutdown nosave || true
wait $server
echo "redis-server ended: $?"
