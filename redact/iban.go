package redact

// ibanLengths is the IBAN length of each country in the IBAN registry.
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
	"BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
	"ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
	"HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
	"LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
	"MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
	"RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TL": 23, "TN": 24,
	"TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}

// ibanLengthTable is ibanLengths indexed by the country code's letters,
// so that the check of every word of a transcript is an array read.
var ibanLengthTable = func() (t [26][26]uint8) {
	for code, n := range ibanLengths {
		t[code[0]-'A'][code[1]-'A'] = uint8(n)
	}
	return t
}()

// ibanLength is the IBAN length of the country whose code is the letters
// a and b in either case, 0 when there is none.
func ibanLength(a, b byte) int {
	a, b = a|0x20, b|0x20 // lower case
	if a < 'a' || a > 'z' || b < 'a' || b > 'z' {
		return 0
	}
	return int(ibanLengthTable[a-'a'][b-'a'])
}

// ibans finds IBANs in tokens [from, to), written with or without spaces
// or dashes ("DE89 3704 0044 0532 0130 00") or spelled out ("G B two
// nine ..."), that pass the mod-97 check.
func (s *scan) ibans(from, to int) {
	var buf [34]byte
	for k := from; k < to; k++ {
		t := &s.toks[k]
		if t.claimed || t.kind != tokWord || !s.mayStartIBAN(k, to) {
			continue
		}
		last, ok := s.ibanAt(k, to, buf[:0])
		if ok {
			s.claim(k, last, IBAN, true)
			k = last
		}
	}
}

// mayStartIBAN reports whether token k starts with a country code: two
// letters of a word, or two spelled letters ("G B").
func (s *scan) mayStartIBAN(k, to int) bool {
	t := &s.toks[k]
	if len(t.text) >= 2 {
		return ibanLength(t.text[0], t.text[1]) > 0
	}
	return k+1 < to && len(s.toks[k+1].text) == 1 && ibanLength(t.text[0], s.toks[k+1].text[0]) > 0
}

// ibanAt reads the characters of an IBAN starting at token k.
func (s *scan) ibanAt(k, to int, chars []byte) (last int, ok bool) {
	want := 0
	for j := k; j < to; j++ {
		t := &s.toks[j]
		if t.claimed {
			return 0, false
		}
		switch {
		case t.kind == tokWord && t.info.num == numDigit && len(t.text) > 1 && len(chars) >= 2:
			chars = append(chars, '0'+byte(t.info.value))
		case t.kind == tokWord || t.kind == tokNum:
			for i := 0; i < len(t.text); i++ {
				c := t.text[i]
				switch {
				case c >= 'a' && c <= 'z':
					chars = append(chars, c-'a'+'A')
				case c >= 'A' && c <= 'Z':
					chars = append(chars, c)
				case c >= '0' && c <= '9':
					chars = append(chars, c)
				default:
					return 0, false
				}
				if len(chars) > 34 {
					return 0, false
				}
			}
		case t.text == "-" && j > k:
			continue
		default:
			return 0, false
		}
		if want == 0 && len(chars) >= 2 {
			if want = ibanLength(chars[0], chars[1]); want == 0 {
				return 0, false
			}
		}
		if len(chars) >= 4 && !(isDigit(chars[2]) && isDigit(chars[3])) {
			return 0, false
		}
		switch {
		case want > 0 && len(chars) == want:
			return j, mod97(chars) == 1
		case want > 0 && len(chars) > want:
			return 0, false
		}
	}
	return 0, false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// mod97 is the IBAN check: the first four characters moved to the end,
// letters as 10-35, the whole read as a number modulo 97.
func mod97(iban []byte) int {
	r := 0
	add := func(c byte) {
		if isDigit(c) {
			r = (r*10 + int(c-'0')) % 97
		} else {
			r = (r*100 + int(c-'A') + 10) % 97
		}
	}
	for _, c := range iban[4:] {
		add(c)
	}
	for _, c := range iban[:4] {
		add(c)
	}
	return r
}
