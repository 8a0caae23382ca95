#!/usr/bin/env bash
# A pretend cluster on one machine: N network namespaces ("hosts") on a bridge, each with its own address, for
# running and testing MPI jobs across a real TCP/IP stack. Only addresses inside 10.77.0.0/24 are used; `down`
# removes everything `up` made. Needs root (ip netns, bridges, veth, tc).
#
#   tools/netns-cluster.sh up N [RATE]     make hosts tpllm-h1 … tpllm-hN at 10.77.0.1 … 10.77.0.N (RATE: tc tbf rate
#                                          of every host's link, e.g. 1gbit, 10gbit; default unshaped)
#   tools/netns-cluster.sh down N          remove them and the bridge
#   tools/netns-cluster.sh hostfile N [SLOTS]   print an Open MPI hostfile of the N hosts (SLOTS per host, default 1)
#   tools/netns-cluster.sh run N [mpirun options…] -- COMMAND…
#                                          run mpirun in host 1 across the N hosts (a hostfile of one slot each unless
#                                          you pass --hostfile), TCP only, over the cluster's subnet
#
# mpirun starts remote daemons through tools/netns-rsh (its plm_rsh_agent), which runs them in the host's namespace.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
subnet=10.77.0
bridge=tpllm-br0

ns() { echo "tpllm-h$1"; }

up() {
  local n=$1 rate=${2:-}
  [[ $n =~ ^[0-9]+$ && $n -ge 1 && $n -le 250 ]] || { echo "netns-cluster: N must be 1..250, not '$n'" >&2; exit 2; }
  ip link show "$bridge" >/dev/null 2>&1 || { ip link add "$bridge" type bridge; ip link set "$bridge" up; }
  for i in $(seq 1 "$n"); do
    local h; h=$(ns "$i")
    ip netns list | grep -qw "$h" && continue
    ip netns add "$h"
    ip link add "tpllm-v$i" type veth peer name eth0 netns "$h"
    ip link set "tpllm-v$i" master "$bridge" up
    ip -n "$h" addr add "$subnet.$i/24" dev eth0
    ip -n "$h" link set eth0 up
    ip -n "$h" link set lo up
    if [[ -n $rate ]]; then
      # both directions: the host's egress, and the bridge port's egress towards the host; a bucket of 10 ms of the
      # rate (at least 64 KB), so the shaper's timer granularity does not throttle fast links below their rate
      local bytes
      case $rate in
        *gbit) bytes=$(( ${rate%gbit} * 1250000 )) ;;
        *mbit) bytes=$(( ${rate%mbit} * 1250 )) ;;
        *) echo "netns-cluster: RATE must look like 10gbit or 500mbit, not '$rate'" >&2; exit 2 ;;
      esac
      (( bytes < 65536 )) && bytes=65536
      tc -n "$h" qdisc add dev eth0 root tbf rate "$rate" burst "$bytes" latency 50ms
      tc qdisc add dev "tpllm-v$i" root tbf rate "$rate" burst "$bytes" latency 50ms
    fi
  done
}

down() {
  local n=$1
  for i in $(seq 1 "$n"); do
    ip netns del "$(ns "$i")" 2>/dev/null || true
    ip link del "tpllm-v$i" 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
}

hostfile() {
  local n=$1 slots=${2:-1}
  for i in $(seq 1 "$n"); do echo "$subnet.$i slots=$slots"; done
}

run() {
  local n=$1; shift
  local opts=() hf=""
  while [[ $# -gt 0 && $1 != "--" ]]; do
    [[ $1 == "--hostfile" ]] && hf=$2
    opts+=("$1"); shift
  done
  [[ $# -gt 0 ]] && shift
  if [[ -z $hf ]]; then
    hf=$(mktemp /tmp/tpllm-hosts.XXXXXX)
    hostfile "$n" > "$hf"
    opts+=(--hostfile "$hf")
  fi
  # every host in the hostfile must answer before mpirun is trusted with it: a name that is no host of the cluster
  # fails here at once, with its name, instead of leaving mpirun waiting for a daemon that never starts
  while read -r host _; do
    [[ -z $host || $host == \#* ]] && continue
    timeout 10 "$here/netns-rsh" "$host" true || { echo "netns-cluster: host '$host' in $hf is not reachable (not one of tpllm-h1…h$n?)" >&2; exit 3; }
  done < "$hf"
  # the hosts share this machine's cores: each would bind its first rank to "its" core 0, the same core for all
  exec ip netns exec "$(ns 1)" mpirun --allow-run-as-root --bind-to none \
    --mca plm_rsh_agent "$here/netns-rsh" --mca btl tcp,self \
    --mca btl_tcp_if_include "$subnet.0/24" --mca oob_tcp_if_include "$subnet.0/24" \
    "${opts[@]}" "$@"
}

cmd=${1:-}; shift || true
case $cmd in
  up) up "$@" ;;
  down) down "$@" ;;
  hostfile) hostfile "$@" ;;
  run) run "$@" ;;
  *) sed -n '2,17p' "$0" >&2; exit 2 ;;
esac
