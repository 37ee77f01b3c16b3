# TLS and SASL/SCRAM pieces of ops/kafka/kafka.sh (sourced, not run): a local CA, the broker's
# key store, a client certificate for mutual TLS, and the broker settings that use them.
# shellcheck shell=bash

# Make DIR/{ca.pem,ca.key,broker.p12,truststore.p12,client.pem,client.key,store.password} once:
# a CA, a broker certificate for 127.0.0.1 and localhost signed by it (in a PKCS12 key store),
# a trust store holding the CA (client certificates are checked against it), and a client
# certificate. Kept across restarts, so clients keep trusting the same CA.
make_tls() {
    local dir="$1"
    if [[ -s "$dir/broker.p12" && -s "$dir/truststore.p12" && -s "$dir/client.key" ]]; then
        return 0
    fi
    command -v openssl >/dev/null 2>&1 || die "openssl is required to make the TLS certificates"
    command -v keytool >/dev/null 2>&1 || die "keytool (Java 17) is required for the trust store"
    # Keep a SCRAM password remembered by an earlier start without TLS listeners.
    local kept_scram=""
    if [[ -s "$dir/scram.password" ]]; then
        kept_scram="$(tr -d '[:space:]' <"$dir/scram.password")"
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    chmod 700 "$dir"
    if [[ -n "$kept_scram" ]]; then
        (umask 077 && echo "$kept_scram" >"$dir/scram.password")
    fi
    local pass
    pass="$(openssl rand -hex 16)"
    echo "$pass" >"$dir/store.password"
    {
        openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
            -keyout "$dir/ca.key" -out "$dir/ca.pem" -subj "/CN=faustapp local CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -addext "subjectKeyIdentifier=hash"
        sign_leaf "$dir" broker "/CN=localhost" \
            "subjectAltName=IP:127.0.0.1,DNS:localhost"$'\n'"extendedKeyUsage=serverAuth,clientAuth"
        sign_leaf "$dir" client "/CN=faustapp-client" "extendedKeyUsage=clientAuth"
        openssl pkcs12 -export -in "$dir/broker.pem" -inkey "$dir/broker.key" \
            -certfile "$dir/ca.pem" -name broker -out "$dir/broker.p12" -passout "pass:$pass"
        keytool -importcert -noprompt -alias faustapp-ca -file "$dir/ca.pem" \
            -keystore "$dir/truststore.p12" -storetype PKCS12 -storepass "$pass"
    } >"$dir/make.log" 2>&1 || {
        cat "$dir/make.log" >&2
        die "could not make the TLS certificates in $dir"
    }
    chmod 600 "$dir"/*.key "$dir/store.password"
    log "made a CA, a broker and a client certificate in $dir"
}

# sign_leaf DIR NAME SUBJECT EXTENSIONS: DIR/NAME.key and DIR/NAME.pem signed by DIR/ca.*
sign_leaf() {
    local dir="$1" name="$2" subject="$3" extensions="$4"
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$dir/$name.key" \
        -out "$dir/$name.csr" -subj "$subject"
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
        "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" "$extensions" \
        >"$dir/$name.ext"
    openssl x509 -req -sha256 -days 3650 -in "$dir/$name.csr" -CA "$dir/ca.pem" \
        -CAkey "$dir/ca.key" -CAcreateserial -out "$dir/$name.pem" -extfile "$dir/$name.ext"
    rm -f "$dir/$name.csr" "$dir/$name.ext"
}

# Broker settings for its TLS listeners (key store, trust store; no client certificate asked
# unless a listener says so).
tls_settings() {
    local dir="$1" pass
    pass="$(tr -d '[:space:]' <"$dir/store.password")"
    cat <<EOF
ssl.keystore.type=PKCS12
ssl.keystore.location=$dir/broker.p12
ssl.keystore.password=$pass
ssl.key.password=$pass
ssl.truststore.type=PKCS12
ssl.truststore.location=$dir/truststore.p12
ssl.truststore.password=$pass
ssl.client.auth=none
EOF
}

# The SCRAM mechanisms the SASL listeners take; the SCRAM user has credentials for each.
SCRAM_MECHANISMS="SCRAM-SHA-256 SCRAM-SHA-512"
SCRAM_LOGIN_MODULE="org.apache.kafka.common.security.scram.ScramLoginModule required;"

# Broker settings of the SASL listeners named (sasl_ssl, sasl_plaintext): SCRAM logins checked
# against the users stored in the cluster metadata.
sasl_settings() {
    local enabled="${SCRAM_MECHANISMS// /,}" listener mechanism
    echo "sasl.enabled.mechanisms=$enabled"
    for listener in "$@"; do
        echo "listener.name.$listener.sasl.enabled.mechanisms=$enabled"
        for mechanism in $SCRAM_MECHANISMS; do
            mechanism="$(echo "$mechanism" | tr '[:upper:]' '[:lower:]')"
            echo "listener.name.$listener.$mechanism.sasl.jaas.config=$SCRAM_LOGIN_MODULE"
        done
    done
}

# The SCRAM password: the one given (remembered in DIR/scram.password), else the remembered
# one, else a new random one.
scram_password_for() {
    local dir="$1" given="$2" file="$1/scram.password"
    if [[ ! -d "$dir" ]]; then (umask 077 && mkdir -p "$dir"); fi
    if [[ -n "$given" ]]; then
        (umask 077 && echo "$given" >"$file")
        echo "$given"
    elif [[ -s "$file" ]]; then
        tr -d '[:space:]' <"$file"
    else
        local made
        made="$(openssl rand -hex 16)"
        (umask 077 && echo "$made" >"$file")
        echo "$made"
    fi
}

# Create or update the SCRAM user, with a credential for each of SCRAM_MECHANISMS, through the
# PLAINTEXT listener at BOOTSTRAP. One call per mechanism: Kafka 3.9 refuses a single call that
# sets two ("A user credential cannot be altered twice in the same request").
set_scram_user() {
    local bootstrap="$1" user="$2" password="$3" out mechanism
    for mechanism in $SCRAM_MECHANISMS; do
        if ! out="$(kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$bootstrap" --alter \
            --add-config "$mechanism=[iterations=8192,password=$password]" \
            --entity-type users --entity-name "$user" 2>&1)"; then
            echo "$out" | grep -v -i password >&2 || true
            die "could not set the $mechanism credential of the SCRAM user $user"
        fi
    done
}
