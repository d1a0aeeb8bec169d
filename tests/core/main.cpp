// The one Catch2 main for tests/core/*.cpp.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
