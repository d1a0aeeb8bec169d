// sse/utf8.hpp: the byte-level helpers of the SSE parser (private to src/sse/).
//
// Contract:
// - scan_line_end(p, end, non_ascii) returns the first CR or LF in [p, end) (or `end`) and
//   ORs into `non_ascii` whether a byte >= 0x80 precedes it. It may read up to 15 bytes past
//   `end`; callers guarantee those bytes are allocated and initialized (the parser's buffer
//   keeps kScanPadding bytes of zeroed slack after its capacity).
// - is_valid_utf8() says whether a byte string is well-formed UTF-8 (RFC 3629: no overlongs,
//   no surrogates, nothing above U+10FFFF).
// - append_utf8_replacing() appends a byte string to `out` decoded the way the WHATWG
//   Encoding Standard's UTF-8 decoder does with replacement: each maximal subpart of an
//   ill-formed sequence becomes one U+FFFD, and the byte that broke a sequence is decoded
//   again on its own. Because CR and LF are ASCII, decoding line by line gives the same
//   characters as decoding the whole stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace levhttp::sse::detail {

inline constexpr std::size_t kScanPadding = 16;

#if defined(__SSE2__)

// One 16-byte step (masked to the bytes before `end`): true with `p` at the line end if there
// is one in this block, else `p` advances past the block. High bits seen go into `high`.
inline bool scan_block(const char *&p, const char *end, unsigned &high) {
  const __m128i lf = _mm_set1_epi8('\n');
  const __m128i cr = _mm_set1_epi8('\r');
  // May read past `end` (into the padding); bits beyond it are masked off.
  __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
  unsigned eol = static_cast<unsigned>(
      _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr))));
  unsigned hi = static_cast<unsigned>(_mm_movemask_epi8(v));
  std::size_t left = static_cast<std::size_t>(end - p);
  if (left < 16) {
    unsigned valid = (1u << left) - 1u;
    eol &= valid;
    hi &= valid;
  }
  if (eol != 0) {
    unsigned at = static_cast<unsigned>(__builtin_ctz(eol));
    high |= hi & ((1u << at) - 1u);
    p += at;
    return true;
  }
  high |= hi;
  p += left < 16 ? left : 16;
  return false;
}

inline const char *scan_line_end(const char *p, const char *end, bool &non_ascii) {
  unsigned high = 0;
  // Most lines are short: look at the first 16 bytes exactly before going wide.
  if (p < end && scan_block(p, end, high)) {
    non_ascii |= high != 0;
    return p;
  }
  // Then 64 bytes per round. A byte below 0x0E (CR, LF, but also TAB and other controls)
  // makes _mm_subs_epu8(0x0E, v) non-zero: one cheap test per block; the rare false alarm
  // just finishes that stretch 16 bytes at a time below.
  const __m128i below = _mm_set1_epi8(0x0E);
  const __m128i zero = _mm_setzero_si128();
  while (end - p >= 64) {
    __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p + 16));
    __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p + 32));
    __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p + 48));
    __m128i ctl = _mm_or_si128(_mm_or_si128(_mm_subs_epu8(below, a), _mm_subs_epu8(below, b)),
                               _mm_or_si128(_mm_subs_epu8(below, c), _mm_subs_epu8(below, d)));
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(ctl, zero)) != 0xFFFF) break;
    high |= static_cast<unsigned>(
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d))));
    p += 64;
  }
  while (p < end) {
    if (scan_block(p, end, high)) break;
  }
  non_ascii |= high != 0;
  return p;
}

#else

inline const char *scan_line_end(const char *p, const char *end, bool &non_ascii) {
  unsigned char high = 0;
  for (; p < end; ++p) {
    unsigned char c = static_cast<unsigned char>(*p);
    if (c == '\n' || c == '\r') break;
    high |= c;
  }
  non_ascii |= (high & 0x80u) != 0;
  return p;
}

#endif

// Length of the well-formed sequence starting at p[0] (a byte >= 0x80), or 0 if the bytes at
// p do not start one. `n` is the number of bytes available.
inline std::size_t utf8_sequence_length(const unsigned char *p, std::size_t n) {
  unsigned char c = p[0];
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  std::size_t need;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;  // no overlongs
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;  // no overlongs
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (n < need + 1) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (std::size_t i = 2; i <= need; ++i) {
    if (p[i] < 0x80 || p[i] > 0xBF) return 0;
  }
  return need + 1;
}

inline bool is_valid_utf8(const char *s, std::size_t n) {
  const unsigned char *p = reinterpret_cast<const unsigned char *>(s);
  std::size_t i = 0;
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if ((w & 0x8080808080808080ull) != 0) break;
      i += 8;
    }
    if (i >= n) break;
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = utf8_sequence_length(p + i, n - i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

// The WHATWG decoder, byte by byte: `needed` continuation bytes are still expected, the next
// one within [lower, upper]. A byte outside the range ends the sequence with one U+FFFD and
// is then processed again from the initial state.
inline void append_utf8_replacing(std::string &out, const char *s, std::size_t n) {
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";
  const unsigned char *p = reinterpret_cast<const unsigned char *>(s);
  std::size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      std::size_t j = i + 1;
      while (j < n && p[j] < 0x80) ++j;
      out.append(s + i, j - i);
      i = j;
      continue;
    }
    std::size_t len = utf8_sequence_length(p + i, n - i);
    if (len != 0) {
      out.append(s + i, len);
      i += len;
      continue;
    }
    // Ill-formed: consume the maximal subpart (the lead byte if it is a valid lead, plus the
    // continuation bytes that were still acceptable), emit one U+FFFD.
    std::size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    std::size_t j = i + 1;
    while (need > 0 && j < n && p[j] >= lo && p[j] <= hi) {
      ++j;
      --need;
      lo = 0x80;
      hi = 0xBF;
    }
    out.append(kReplacement, 3);
    i = j;
  }
}

}  // namespace levhttp::sse::detail
