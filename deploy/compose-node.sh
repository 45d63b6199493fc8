#!/bin/sh
# Entrypoint of one organisation's node in deploy/compose.yml.
#
# First start: `threatlog init` with $ORG_NAME. Every start: writes this node's pairing card
# to the shared cards volume as $CARDS_DIR/$NODE_HOST.card, waits for the card of every host
# in $PEERS, pairs with each one not yet paired (their sync endpoint is HOST:7443 on the
# compose network), then runs `threatlog serve`. Pairing is mutual: each node pairs with the
# others' cards, so each side accepts the other's key during the TLS handshake. A restart
# finds its peers already paired and just serves again.
#
# Optional: RELATIONSHIP (external), TLP_MAX (amber) for every peer; LISTEN_HOST (0.0.0.0),
# API_PORT (8080), SYNC_PORT (7443; also the peers' port) to run the script outside
# containers, e.g. two nodes on 127.0.0.2 and 127.0.0.3.
set -eu

: "${ORG_NAME:?ORG_NAME names this node's organisation}"
: "${NODE_HOST:?NODE_HOST is this node's host name on the compose network}"
DATA=${THREATLOG_DATA:-/var/lib/threatlog}
CARDS_DIR=${CARDS_DIR:-/var/lib/threatlog-cards}
PEERS=${PEERS:-}
RELATIONSHIP=${RELATIONSHIP:-external}
TLP_MAX=${TLP_MAX:-amber}
LISTEN_HOST=${LISTEN_HOST:-0.0.0.0}
SYNC_PORT=${SYNC_PORT:-7443}
API_PORT=${API_PORT:-8080}
CARD_WAIT_S=120

if [ ! -f "$DATA/threatlog.toml" ]; then
    threatlog init --org-name "$ORG_NAME"
    echo "admin API key of $ORG_NAME: $(cat "$DATA/admin.key")"
fi

card=$(threatlog peer card)
echo "pairing card of $ORG_NAME ($NODE_HOST): $card"
printf '%s\n' "$card" > "$CARDS_DIR/.$NODE_HOST.card"
mv "$CARDS_DIR/.$NODE_HOST.card" "$CARDS_DIR/$NODE_HOST.card"

for peer in $PEERS; do
    waited=0
    while [ ! -s "$CARDS_DIR/$peer.card" ]; do
        if [ "$waited" -ge "$CARD_WAIT_S" ]; then
            echo "no card from $peer after ${CARD_WAIT_S}s; pair later with: threatlog peer add CARD" >&2
            continue 2
        fi
        sleep 1
        waited=$((waited + 1))
    done
    if threatlog peer add "$(cat "$CARDS_DIR/$peer.card")" \
        --endpoint "$peer:$SYNC_PORT" --relationship "$RELATIONSHIP" --tlp-max "$TLP_MAX"; then
        :
    else
        echo "$peer: already paired (or its card was refused); see threatlog peer list" >&2
    fi
done

exec threatlog serve --api-listen "$LISTEN_HOST:$API_PORT" --sync-listen "$LISTEN_HOST:$SYNC_PORT"
