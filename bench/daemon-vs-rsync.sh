#!/usr/bin/env bash
# async through async-server (loopback TLS) vs rsync over ssh to 127.0.0.1, in the same run,
# interleaved (A B A B). Needs sshd on 127.0.0.1:$SSH_PORT accepting $SSH_KEY for this user
# (see bench/RESULTS.md for the setup used). Prints a markdown table of wall seconds.
#
#   npm run build && SSH_PORT=2222 SSH_KEY=~/.ssh/bench_ed25519 bash bench/daemon-vs-rsync.sh [small-files] [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
SSH_PORT=${SSH_PORT:-22}
SSH_KEY=${SSH_KEY:-$HOME/.ssh/id_ed25519}
SMALL=${1:-100000}
RUNS=${2:-2}
W=$(mktemp -d /tmp/async-vs-rsync-XXXX)
trap 'kill $SRV 2>/dev/null || true; rm -rf "$W"' EXIT
mkdir -p "$W/big" "$W/small" "$W/docroot"
for i in 0 1 2 3; do head -c 256M /dev/urandom > "$W/big/f$i.bin"; done
node -e '
const fs=require("fs"),p=require("path");const root=process.argv[1],n=+process.argv[2];
for(let i=0;i<n;i++){const d=p.join(root,"d"+(i%1000));if(i<1000)fs.mkdirSync(d);fs.writeFileSync(p.join(d,"f"+i),Buffer.alloc(1+(i*7919)%4096,i%251));}
' "$W/small" "$SMALL"
HASH=$(printf bench | node bin/async-server.js hash-password)
printf '[server]\nport = 0\n[users.bench]\ndocroot = "%s"\n%s\n' "$W/docroot" "$HASH" > "$W/server.toml"
node bin/async-server.js --config "$W/server.toml" > "$W/srv.out" 2> "$W/srv.err" &
SRV=$!
until grep -q '^fingerprint' "$W/srv.out" 2>/dev/null; do sleep 0.2; done
PORT=$(head -1 "$W/srv.out" | sed 's/.*://')
t() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
a() { # tree name run
  ASPERA_SCP_PASS=bench node bin/async.js -q -N "$2" -d "$W/$1" -r "bench@127.0.0.1:/a-$2" --create-dir \
    -P "$PORT" --known-hosts "$W/kh" --accept-new-host-key
}
r() { rsync -a -e "ssh -p $SSH_PORT -i $SSH_KEY -o StrictHostKeyChecking=no -o UserKnownHostsFile=$W/sshkh" "$W/$1/" "127.0.0.1:$W/r-$2/"; }
echo "| tree | tool | initial (s) | no change (s) |"
echo "|---|---|---|---|"
for tree in big small; do
  declare -a AI=() RI=() AN=() RN=()
  for k in $(seq 1 "$RUNS"); do
    cat "$W/$tree"/* > /dev/null 2>&1 || find "$W/$tree" -type f -exec cat {} + > /dev/null
    AI+=("$(t a "$tree" "$tree$k")"); AN+=("$(t a "$tree" "$tree$k")")
    RI+=("$(t r "$tree" "$tree$k")"); RN+=("$(t r "$tree" "$tree$k")")
    rm -rf "$W/docroot/a-$tree$k" "$W/r-$tree$k" "$W/$tree/.private-asp"
  done
  echo "| $tree | async via async-server (TLS) | ${AI[*]} | ${AN[*]} |"
  echo "| $tree | rsync -a over ssh | ${RI[*]} | ${RN[*]} |"
done
