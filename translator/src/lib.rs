//! The binary translator (issue 3): guest x86-64 blocks in, code for a ring-0 code cache out.
//! Nothing is built yet; `simulate` runs programs untranslated at ring 3 until it lands.
