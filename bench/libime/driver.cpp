// fcitx5's pinyin engine (libime) as a baseline: one pinyin sentence per stdin line
// ("ni'hao'shi'jie"), one converted sentence per stdout line. Built by bench/libime/build.sh.
#include <libime/core/userlanguagemodel.h>
#include <libime/pinyin/pinyincontext.h>
#include <libime/pinyin/pinyindictionary.h>
#include <libime/pinyin/pinyinime.h>
#include <iostream>
#include <memory>
#include <string>

int main(int argc, char **argv) {
    const char *dict = argc > 1 ? argv[1] : "/usr/share/libime/sc.dict";
    const char *lm = argc > 2 ? argv[2] : "/usr/lib/x86_64-linux-gnu/libime/zh_CN.lm";
    auto d = std::make_unique<libime::PinyinDictionary>();
    d->load(libime::PinyinDictionary::SystemDict, dict, libime::PinyinDictFormat::Binary);
    auto model = std::make_unique<libime::UserLanguageModel>(lm);
    libime::PinyinIME ime(std::move(d), std::move(model));
    ime.setNBest(1);
    std::string line;
    while (std::getline(std::cin, line)) {
        libime::PinyinContext ctx(&ime);
        ctx.setMaxSentenceLength(-1);
        ctx.type(line);
        std::cout << ctx.sentence() << std::endl;
    }
    return 0;
}
