#!/usr/bin/env bats
# make install's promise: the programs, the library, its headers, a working
# pkg-config file and the man pages, under any prefix.
load helpers

@test "install into a prefix: programs run, a program builds against the library" {
    build=$(dirname "$AUTHCERT_BIN")
    run cmake --install "$build" --prefix "$T/p"
    [ "$status" -eq 0 ]
    for b in authcert authcertd authcert-agent; do
        LD_LIBRARY_PATH="$T/p/lib" "$T/p/sbin/$b" --version
    done
    for m in authcert authcertd authcert-agent; do
        [ -f "$T/p/share/man/man8/$m.8" ]
        man -l "$T/p/share/man/man8/$m.8" >/dev/null 2>&1 || MANWIDTH=80 man -l "$T/p/share/man/man8/$m.8" >/dev/null
    done
    [ -f "$T/p/include/authcert/authcert.h" ]
    cat > "$T/use.c" <<'C'
#include <stdio.h>
#include <authcert/authcert.h>
int main(void)
{
    authcert_cert_params p = { .type = AUTHCERT_KEY_P256 };
    authcert_cert *c = NULL;
    if (authcert_init() != AUTHCERT_OK || authcert_cert_generate(&p, &c) != AUTHCERT_OK)
        return 1;
    printf("%s\n", authcert_cert_thumbprint(c));
    authcert_cert_free(c);
    authcert_cleanup();
    return 0;
}
C
    export PKG_CONFIG_PATH="$T/p/lib/pkgconfig"
    # The sanitizer build's library wants its runtime in the program too.
    san=()
    case $(ldd "$T/p/lib/libauthcert.so") in *libasan*) san=(-fsanitize=address,undefined) ;; esac
    cc -std=c11 "${san[@]}" -o "$T/use" "$T/use.c" $(pkg-config --cflags --libs authcert)
    run env LD_LIBRARY_PATH="$T/p/lib" "$T/use"
    [ "$status" -eq 0 ]
    [[ "$output" =~ ^[0-9a-f]{64}$ ]]
}
