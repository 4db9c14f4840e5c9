# Two substitutions a line, with back-references: each word's first vowel run moved to its end,
# then its first letter.
s/\([aeiou]\)\([a-z]*\)/\2\1/g
s/^\(.\)\(.*\)$/\2\1/
