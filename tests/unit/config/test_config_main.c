/* test_config_main.c - runs every group of the config unit tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_config.h"

int main(void)
{
    int failed = 0;
    failed += test_config_valid_group();
    failed += test_config_errors_group();
    failed += test_config_values_group();
    return failed == 0 ? 0 : 1;
}
