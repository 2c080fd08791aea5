// Nests N directories under ./t without ever naming a long path: each round wraps t in a new
// directory (mkdir n; mv t n/t; mv n t), then puts a small file at the bottom.
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int main(int argc, char **argv) {
    int levels = argc > 1 ? atoi(argv[1]) : 1000;
    if (mkdir("t", 0755) != 0) return 1;
    FILE *f = fopen("t/bottom", "w");
    if (!f || fputs("12345\n", f) < 0 || fclose(f) != 0) return 2;
    for (int i = 0; i < levels; i++)
        if (mkdir("n", 0755) != 0 || rename("t", "n/t") != 0 || rename("n", "t") != 0) return 3;
    return 0;
}
