// C++ with libstdc++ shared: static constructors run before main, exceptions unwind through
// frames with destructors (the unwinder reads .eh_frame and calls into libgcc_s), RTTI picks
// the handler, and static destructors run at exit.
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

struct Noisy {
    std::string name;
    explicit Noisy(std::string n) : name(std::move(n)) { std::printf("construct %s\n", name.c_str()); }
    ~Noisy() { std::printf("destroy %s\n", name.c_str()); }
};

static Noisy global("global");

struct Custom : std::runtime_error {
    int code;
    Custom(const char *what, int c) : std::runtime_error(what), code(c) {}
};

static int depth(int n) {
    Noisy frame("frame " + std::to_string(n));
    if (n == 3)
        throw Custom("deep enough", n * 10);
    return depth(n + 1);
}

int main() {
    std::printf("main starts\n");
    try {
        depth(0);
    } catch (const Custom &e) {
        std::printf("caught Custom: %s, code %d\n", e.what(), e.code);
    }
    try {
        std::vector<int> v(3);
        (void)v.at(7);
    } catch (const std::out_of_range &) {
        std::printf("caught out_of_range\n");
    }
    std::map<std::string, int> counts;
    for (const char *word : {"b", "a", "b", "c", "b"})
        counts[word]++;
    for (const auto &[word, count] : counts)
        std::printf("%s %d\n", word.c_str(), count);
    return 0;
}
