// fcitx5's pinyin engine (libime) as a filter: one toneless pinyin sentence per stdin line
// ("ni hao ma"), the engine's best sentence per stdout line. Built by bench/lm_vs_peers.py:
//   g++ -O2 -std=c++17 libime_driver.cpp -I/usr/include/LibIME -I/usr/include/Fcitx5/Utils \
//       -lIMEPinyin -lIMECore -lFcitx5Utils -o build/libime_driver
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include <libime/core/userlanguagemodel.h>
#include <libime/pinyin/pinyincontext.h>
#include <libime/pinyin/pinyindictionary.h>
#include <libime/pinyin/pinyinime.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        std::cerr << "usage: libime_driver SC.DICT ZH_CN.LM < pinyin-lines" << std::endl;
        return 2;
    }
    auto dict = std::make_unique<libime::PinyinDictionary>();
    dict->load(libime::PinyinDictionary::SystemDict, argv[1], libime::PinyinDictFormat::Binary);
    auto model = std::make_unique<libime::UserLanguageModel>(argv[2]);
    libime::PinyinIME ime(std::move(dict), std::move(model));
    ime.setNBest(1);
    libime::PinyinContext ctx(&ime);
    ctx.setMaxSentenceLength(-1);
    std::string line;
    while (std::getline(std::cin, line)) {
        std::istringstream words(line);
        std::string syl, typed;
        while (words >> syl) {
            if (!typed.empty()) typed += "'";  // apostrophes fix the syllable boundaries
            typed += syl;
        }
        ctx.clear();
        ctx.type(typed);
        std::cout << ctx.sentence() << "\n" << std::flush;
    }
    return 0;
}
