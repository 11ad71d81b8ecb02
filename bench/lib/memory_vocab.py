"""Writes the memory benchmark's vocabulary, most frequent first, one word a line: about 120 common English
words, then made-up English-like words (syllables) up to COUNT (default 5000). Fixed seed: every run, and
every helper reading the file (wrk's lua, memory_raw.cpp), sees the same words in the same order; a word's
line number is its Zipf rank."""
import random
import sys

path = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 5000

COMMON = """the of and to a in is it you that he was for on are with as his they be at one have this from
or had by not word but what some we can out other were all there when up use your how said an each she which
do their time if will way about many then them write would like so these her long make thing see him two has
look more day could go come did number sound no most people my over know water than call first who may down
side been now find any new work part take get place made live where after back little only round man year came
show every good me give our under name very through just form sentence great think say help low line differ
turn cause much mean before move right boy old too same tell does set three want air well also play small end
put home read hand port large spell add even land here must big high such follow act why ask men change went
light kind off need house picture try us again animal point mother world near build self earth father""".split()

rng = random.Random(20240611)
onsets = ["b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "y", "z",
          "br", "cl", "cr", "dr", "fl", "gr", "pl", "pr", "sh", "sl", "sp", "st", "str", "th", "tr", "ch", "wh"]
vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ee", "oa", "ou", "oo", "ie"]
codas = ["", "", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ck", "ng", "rt", "sh", "th", "x", "ll", "mp"]

words, seen = [], set()
for w in COMMON:
    if w not in seen:
        seen.add(w)
        words.append(w)
while len(words) < count:
    syllables = rng.choices([1, 2, 3], weights=[2, 5, 3])[0]
    w = "".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(syllables))
    if 3 <= len(w) <= 12 and w not in seen:
        seen.add(w)
        words.append(w)
with open(path, "w") as f:
    f.write("\n".join(words) + "\n")
