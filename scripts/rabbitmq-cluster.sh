#!/usr/bin/env bash
# A three-node RabbitMQ cluster on loopback for the failover test
# (tests/scale_out.rs), beside any RabbitMQ the machine already runs on
# 5672 (left alone):
#
#   nodes imgworker-a, -b, -c @localhost; AMQP on 127.0.0.1:5681, 5682,
#   5683; Erlang distribution on 25681, 25682, 25683; data, logs and the
#   shared Erlang cookie under target/rabbitmq-cluster/ (git-ignored).
#
# scripts/rabbitmq-cluster.sh start      fresh nodes, clustered (about a minute)
# scripts/rabbitmq-cluster.sh stop       stop every node, remove their data
# scripts/rabbitmq-cluster.sh status     the cluster's status
# scripts/rabbitmq-cluster.sh kill N     kill -9 node N (a, b or c)
# scripts/rabbitmq-cluster.sh restart N  start node N again (it rejoins)
# scripts/rabbitmq-cluster.sh ctl N ARGS...   rabbitmqctl against node N
#
# The nodes run RabbitMQ's own scripts directly (not Debian's wrapper, which
# switches to the rabbitmq user and its cookie), as the calling user.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD/target/rabbitmq-cluster
nodes=(a b c)

bin=/usr/lib/rabbitmq/bin
[ -x "$bin/rabbitmq-server" ] || bin=$(dirname "$(command -v rabbitmq-server 2>/dev/null || echo /nonexistent/x)")
if [ ! -x "$bin/rabbitmq-server" ]; then
  echo "rabbitmq-server is not installed: apt-get install rabbitmq-server (scripts/test.sh does)" >&2
  exit 1
fi

node_name() { echo "imgworker-$1@localhost"; }
amqp_port() { case $1 in a) echo 5681 ;; b) echo 5682 ;; c) echo 5683 ;; *) echo "no node $1 (a, b or c)" >&2; exit 2 ;; esac; }

# The environment of node $1's server and of the CLI talking to it.
node_env() {
  local n=$1 port
  port=$(amqp_port "$n")
  export HOME=$root/home
  export RABBITMQ_CONF_ENV_FILE=$root/rabbitmq-env.conf
  export RABBITMQ_NODENAME
  RABBITMQ_NODENAME=$(node_name "$n")
  export RABBITMQ_NODE_PORT=$port
  export RABBITMQ_DIST_PORT=$((port + 20000))
  export RABBITMQ_CONFIG_FILE=$root/$n/rabbitmq.conf
  export RABBITMQ_ADVANCED_CONFIG_FILE=$root/$n/advanced.config
  export RABBITMQ_ENABLED_PLUGINS_FILE=$root/$n/enabled_plugins
  export RABBITMQ_MNESIA_BASE=$root/$n/data
  export RABBITMQ_LOG_BASE=$root/$n/log
  export RABBITMQ_PID_FILE=$root/$n/pid
  export ERL_EPMD_ADDRESS=127.0.0.1
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

ctl() {
  local n=$1
  shift
  (node_env "$n" && "$bin/rabbitmqctl" -n "$(node_name "$n")" "$@")
}

launch() {
  (node_env "$1" && "$bin/rabbitmq-server" -detached >"$root/$1/log/start.out" 2>&1)
}

await_node() {
  local n=$1
  # await_startup waits for the boot to finish, at most --timeout seconds.
  for _ in $(seq 1 60); do
    ctl "$n" -q await_startup --timeout 120 >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "node $(node_name "$n") did not start; its logs are in $root/$n/log" >&2
  return 1
}

stop_all() {
  for n in "${nodes[@]}"; do
    if [ -f "$root/$n/pid" ]; then
      ctl "$n" -q stop >/dev/null 2>&1 || true
      pid=$(cat "$root/$n/pid" 2>/dev/null || true)
      [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$root"
}

case ${1:-} in
  start)
    printf '\n== starting a three-node RabbitMQ cluster on 127.0.0.1:5681-5683 (about a minute)\n' >&2
    stop_all
    # Another checkout's cluster (or anything else) on these ports would
    # make the nodes fail with only a log to say why.
    for n in "${nodes[@]}"; do
      for port in "$(amqp_port "$n")" $(($(amqp_port "$n") + 20000)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
          echo "127.0.0.1:$port is already in use (another checkout's cluster? stop it with its scripts/rabbitmq-cluster.sh stop)" >&2
          exit 1
        fi
      done
    done
    mkdir -p "$root/home"
    # One cookie for the three nodes and the CLI.
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$root/home/.erlang.cookie"
    chmod 400 "$root/home/.erlang.cookie"
    : >"$root/rabbitmq-env.conf"
    for n in "${nodes[@]}"; do
      mkdir -p "$root/$n/log" "$root/$n/data"
      printf 'listeners.tcp.1 = 127.0.0.1:%s\nloopback_users.guest = true\n' "$(amqp_port "$n")" >"$root/$n/rabbitmq.conf"
      echo '[].' >"$root/$n/enabled_plugins"
    done
    for n in "${nodes[@]}"; do launch "$n"; done
    for n in "${nodes[@]}"; do
      await_node "$n"
      echo "  $(node_name "$n") is up on 127.0.0.1:$(amqp_port "$n")" >&2
    done
    for n in b c; do
      ctl "$n" -q stop_app
      # join_cluster logs harmless errors about tables of the stopped app.
      out=$(ctl "$n" -q join_cluster "$(node_name a)" 2>&1) || { echo "$out" >&2; exit 1; }
      ctl "$n" -q start_app
      echo "  $(node_name "$n") joined $(node_name a)" >&2
    done
    running=$(ctl a -q cluster_status --formatter json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["running_nodes"]))')
    [ "$running" = 3 ] || { echo "the cluster has $running running nodes, not 3" >&2; exit 1; }
    ;;
  stop)
    stop_all
    ;;
  status)
    ctl a cluster_status
    ;;
  kill)
    n=${2:?which node: a, b or c}
    amqp_port "$n" >/dev/null
    kill -9 "$(cat "$root/$n/pid")"
    ;;
  restart)
    n=${2:?which node: a, b or c}
    amqp_port "$n" >/dev/null
    launch "$n"
    await_node "$n"
    ;;
  ctl)
    n=${2:?which node: a, b or c}
    shift 2
    ctl "$n" "$@"
    ;;
  *)
    sed -n '2,18p' "$0" >&2
    exit 2
    ;;
esac
