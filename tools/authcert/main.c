/* authcert — the admin tool. (Being built: see issue 2.) */
#include <stdio.h>

#include "authcert/authcert.h"

int main(void)
{
    printf("authcert %s\n", authcert_version());
    return 0;
}
