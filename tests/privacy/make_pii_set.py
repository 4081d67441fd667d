#!/usr/bin/env python3
"""Writes tests/privacy/pii_set.jsonl: realistic prompts with the personal
data and secrets the privacy guard must replace ("values") and look-alikes
it must leave alone ("lookalikes").

The checksums (Luhn, IBAN mod-97, Verhoeff, DNI letter, codice fiscale
character) are computed here independently of the C++ validators, and every
look-alike is asserted to fail its check, so the data set tests the guard
rather than agreeing with it. Deterministic: run it again to regenerate.

    python3 tests/privacy/make_pii_set.py
"""
import json
import os
import random

rng = random.Random(20240607)
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def rand(n, alphabet=ALNUM):
    return "".join(rng.choice(alphabet) for _ in range(n))


def mixed(n):
    """Random token with upper, lower and digits guaranteed."""
    while True:
        s = rand(n)
        if any(c.isupper() for c in s) and any(c.islower() for c in s) and any(c.isdigit() for c in s):
            return s


# --- checksums -------------------------------------------------------------

def luhn_ok(digits):
    total = 0
    for i, ch in enumerate(reversed(digits)):
        v = int(ch)
        if i % 2 == 1:
            v = v * 2 - 9 if v > 4 else v * 2
        total += v
    return total % 10 == 0


def luhn_complete(prefix, length):
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for d in "0123456789":
        if luhn_ok(body + d):
            return body + d
    raise AssertionError


def group(s, sizes, sep=" "):
    out, i = [], 0
    for n in sizes:
        out.append(s[i:i + n])
        i += n
    assert i == len(s)
    return sep.join(out)


def iban_mod(s):
    moved = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in moved)
    return int(num) % 97


def iban_make(country, bban):
    check = 98 - iban_mod(country + "00" + bban)
    iban = "%s%02d%s" % (country, check, bban)
    assert iban_mod(iban) == 1
    return iban


def spaced(iban):
    return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))


VERHOEFF_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]
VERHOEFF_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8]]


def verhoeff_ok(digits):
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = VERHOEFF_D[c][VERHOEFF_P[i % 8][int(ch)]]
    return c == 0


def aadhaar_make(first11):
    for d in "0123456789":
        if verhoeff_ok(first11 + d):
            return first11 + d
    raise AssertionError


DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def dni_make(number8):
    return number8 + DNI_LETTERS[int(number8) % 23]


def nie_make(prefix, number7):
    return prefix + number7 + DNI_LETTERS[int(str("XYZ".index(prefix)) + number7) % 23]


CF_ODD = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]


def cf_check(s15):
    total = 0
    for i, ch in enumerate(s15):
        idx = int(ch) if ch.isdigit() else ord(ch) - 65
        total += CF_ODD[idx] if i % 2 == 0 else idx
    return chr(65 + total % 26)


def ssn_ok(s):
    d = s.replace("-", "").replace(" ", "")
    a, g, n = int(d[:3]), int(d[3:5]), int(d[5:])
    return not (a == 0 or a == 666 or a >= 900 or g == 0 or n == 0 or d in ("078051120", "219099999"))


# --- rows ------------------------------------------------------------------

rows = []


def row(prompt, values=(), lookalikes=()):
    vals = [{"category": c, "value": v} for c, v in values]
    for v in vals:
        assert v["value"] in prompt, (v, prompt)
    for l in lookalikes:
        assert l in prompt, (l, prompt)
    rows.append({"prompt": prompt, "values": vals, "lookalikes": list(lookalikes)})


# E-mail
emails = [
    ("Email john.doe@example.com about the invoice before Friday.", "john.doe@example.com"),
    ("Please forward the contract to maria.garcia+billing@empresa.es and ask for a countersigned copy.", "maria.garcia+billing@empresa.es"),
    ("Draft a polite reply to li.wei@company.cn declining the meeting on Tuesday.", "li.wei@company.cn"),
    ("The support address is support@helpdesk.sub.example.co.uk, can you write a complaint letter?", "support@helpdesk.sub.example.co.uk"),
    ("My university login is first_last@cs.univ.edu; why does the password reset mail never arrive?", "first_last@cs.univ.edu"),
    ("Translate to German: 'Contact ANNA.KOWALSKI@EXAMPLE.DE for the keys.'", "ANNA.KOWALSKI@EXAMPLE.DE"),
    ("Summarize this thread. From: dev-team@startup.ai Subject: launch", "dev-team@startup.ai"),
    ("Write a regex test case where the input is x@y.io and it should match.", "x@y.io"),
    ("Is user%tag@example.net a valid address according to RFC 5322?", "user%tag@example.net"),
    ("Reply-To: j.smith123@mail.example.org - make the tone friendlier.", "j.smith123@mail.example.org"),
]
for p, v in emails:
    row(p, [("email", v)])
row("From: dev-team@startup.ai To: all-hands@startup.ai Subject: launch plan for Q3",
    [("email", "dev-team@startup.ai"), ("email", "all-hands@startup.ai")])
row("Remind bob@example.com twice: bob@example.com forgot the deadline again.",
    [("email", "bob@example.com")])
row("The retina logo is logo@2x.png and the icon is icon@3x.webp; rename both for the CDN.",
    [], ["logo@2x.png", "icon@3x.webp"])
row("In package.json we depend on @types/node and @babel/core version 7.24.0.",
    [], ["@types/node", "@babel/core", "7.24.0"])

# Phones
phones = [
    ("Call me on +44 20 7946 0958 after six, UK time.", "+44 20 7946 0958"),
    ("My WhatsApp is +14155552671 if the line drops.", "+14155552671"),
    ("Our Paris office: +33 6 12 34 56 78 (ask for Claire).", "+33 6 12 34 56 78"),
    ("Berlin reception +49 30 12345678 opens at 9.", "+49 30 12345678"),
    ("Write it as +49 (0)30 1234 5678 in the footer.", "+49 (0)30 1234 5678"),
    ("Tokyo team: +81 3-1234-5678, please schedule a call.", "+81 3-1234-5678"),
    ("The courier in Mumbai can be reached at +91 98765 43210.", "+91 98765 43210"),
    ("Sydney: +61 2 9374 4000 - convert this to E.164.", "+61 2 9374 4000"),
    ("Madrid mobile +34 612 34 56 78, send the SMS in Spanish.", "+34 612 34 56 78"),
    ("Rome landline +39 06 1234 5678.", "+39 06 1234 5678"),
    ("São Paulo: +55 11 91234-5678, is this a mobile number?", "+55 11 91234-5678"),
    ("Shanghai supplier +86 138 0013 8000 wants a WeChat call.", "+86 138 0013 8000"),
    ("Moscow office +7 495 123-45-67 closes early on Fridays.", "+7 495 123-45-67"),
    ("Dublin: +353 1 234 5678, translate the voicemail.", "+353 1 234 5678"),
    ("Dutch mobile +31 6 12345678 for the delivery driver.", "+31 6 12345678"),
    ("Stockholm +46 8 123 456 78 answers in Swedish only.", "+46 8 123 456 78"),
    ("From abroad dial 0044 20 7946 0958 instead.", "0044 20 7946 0958"),
    ("Call (415) 555-2671 to confirm the reservation.", "(415) 555-2671"),
    ("Her cell is 415-555-2671, text her the address.", "415-555-2671"),
    ("Fax the form to 212.555.0147 today.", "212.555.0147"),
    ("The toll-free line 1-800-555-0199 is open 24/7.", "1-800-555-0199"),
    ("London office 020 7946 0958, extension 12.", "020 7946 0958"),
    ("UK mobile 07700 900123, he prefers texts.", "07700 900123"),
    ("Manchester: 0161 496 0000 during office hours.", "0161 496 0000"),
    ("Mon numéro: 06 12 34 56 78, appelle-moi demain.", "06 12 34 56 78"),
    ("Le standard: 01.23.45.67.89 ouvre à 9h.", "01.23.45.67.89"),
    ("Frankfurt: 069 12345678, bitte zurückrufen.", "069 12345678"),
    ("München 089/1234567 ist die Hotline.", "089/1234567"),
    ("Amsterdam 06-12345678 for the landlord.", "06-12345678"),
    ("Sydney office (02) 9374 4000, ask for Priya.", "(02) 9374 4000"),
    ("Osaka branch 06-6123-4567 handles returns.", "06-6123-4567"),
]
for p, v in phones:
    row(p, [("phone", v)])
row("Call +44 20 7946 0958 or, from the US, (415) 555-2671; both forward to me.",
    [("phone", "+44 20 7946 0958"), ("phone", "(415) 555-2671")])
row("Invalid NANP 123-456-7890 and the 7-digit 555-1234 should stay; so should ticket 0001-2345.",
    [], ["123-456-7890", "555-1234", "0001-2345"])
row("The meeting is on 01.02.2024 10 people will attend; budget 1.250,00 EUR.",
    [], ["01.02.2024 10", "1.250,00"])
row("Opening hours 09:00-17:30, Monday to Friday; last entry 16:45.",
    [], ["09:00-17:30", "16:45"])
row("Dates to convert: 2024-01-15, 15/01/2024 and 01.02.2024.",
    [], ["2024-01-15", "15/01/2024", "01.02.2024"])
row("Room 0.12 holds 120 people; the zip code is 94105-1234.",
    [], ["0.12", "120", "94105-1234"])

# Cards
visa16 = "4111111111111111"
cards = [
    ("Charge my Visa 4111 1111 1111 1111, expiry 12/27.", "4111 1111 1111 1111"),
    ("Card number 4012888888881881 was declined, why?", "4012888888881881"),
    ("Old 13-digit Visa 4222222222222 still on file.", "4222222222222"),
    ("Mastercard 5555 5555 5555 4444 for the hotel deposit.", "5555 5555 5555 4444"),
    ("Use 5105-1051-0510-5100 for the test payment.", "5105-1051-0510-5100"),
    ("Amex 3782 822463 10005, CVV in the other message.", "3782 822463 10005"),
    ("Corporate Amex 371449635398431 was charged twice.", "371449635398431"),
    ("Discover 6011 1111 1111 1117 expired last month.", "6011 1111 1111 1117"),
    ("Discover card 6011000990139424, please refund.", "6011000990139424"),
    ("JCB 3530 1113 3330 0000 used in Osaka.", "3530 1113 3330 0000"),
    ("My JCB is 3566002020360505.", "3566002020360505"),
    ("UnionPay 6200000000000005 at the airport.", "6200000000000005"),
]
for prefix, length, grouping, label in [
    ("2223", 16, (4, 4, 4, 4), "Mastercard 2-series"),
    ("36", 14, (4, 6, 4), "Diners Club"),
    ("6759", 16, (4, 4, 4, 4), "Maestro"),
    ("2200", 16, (4, 4, 4, 4), "Mir"),
    ("4", 19, (4, 4, 4, 4, 3), "19-digit Visa"),
    ("65", 16, None, "Discover 65"),
    ("3528", 16, None, "JCB"),
    ("62", 19, None, "UnionPay 19"),
]:
    num = luhn_complete(prefix, length)
    text = group(num, grouping) if grouping else num
    cards.append(("The %s card %s is the one to use." % (label, text), text))
for p, v in cards:
    assert luhn_ok(v.replace(" ", "").replace("-", "")), v
    row(p, [("card", v)])
bad_cards = ["4111 1111 1111 1112", "1234 5678 9012 3456", "4111111111111121", "5555 5555 5555 4445"]
for b in bad_cards:
    assert not luhn_ok(b.replace(" ", ""))
row("Order 4111 1111 1111 1112 shipped; tracking 1Z999AA10123456784.",
    [], ["4111 1111 1111 1112", "1Z999AA10123456784"])
row("Reference 1234 5678 9012 3456 is an order number, not a card.", [], ["1234 5678 9012 3456"])
row("Transaction id 4111111111111121 failed the check, and 5555 5555 5555 4445 too.",
    [], ["4111111111111121", "5555 5555 5555 4445"])
row("The Unix timestamp 1700000000000 in milliseconds is 2023-11-14.", [], ["1700000000000", "2023-11-14"])
row("Pay with 4111 1111 1111 1111; the previous attempt with 4111 1111 1111 1112 was a typo.",
    [("card", "4111 1111 1111 1111")], ["4111 1111 1111 1112"])

# IBAN
bbans = {
    "DE": "370400440532013000", "GB": "WEST12345698765432", "FR": "20041010050500013M02606",
    "ES": "21000418450200051332", "IT": "X0542811101000000123456", "NL": "ABNA0417164300",
    "BE": "539007547034", "CH": "0076201162385295 7".replace(" ", ""), "AT": "1904300234573201",
    "PL": "109010140000071219812874", "SE": "50000000058398257466", "NO": "86011117947",
    "DK": "00400440116243", "FI": "12345600000785", "PT": "000201231234567890154",
    "IE": "AIBK93115212345678", "LU": "0010001000000000", "HR": "10010051863000160",
    "CZ": "08000000192000145399", "SA": "80000000608010167519", "AE": "0331234567890123456",
    "BR": "00360305000010009795493P1", "TR": "0006100519786457841326", "GR": "01101250000000012300695",
}
ibans = {c: iban_make(c, b) for c, b in bbans.items()}
sentences = [
    "Wire the deposit to {} and send me the receipt.",
    "Our supplier's IBAN is {}, is that a German bank?",
    "Please update the payroll account to {} from next month.",
    "Refund to {} (account holder: the company).",
]
for i, (c, iban) in enumerate(ibans.items()):
    text = spaced(iban) if i % 2 == 0 else iban
    row(sentences[i % len(sentences)].format(text), [("iban", text)])
good_de = ibans["DE"]
bad_de = good_de[:2] + "%02d" % ((int(good_de[2:4]) + 1) % 100) + good_de[4:]
bad_gb = ibans["GB"][:-1] + str((int(ibans["GB"][-1]) + 3) % 10)
assert iban_mod(bad_de) != 1 and iban_mod(bad_gb) != 1
row("The IBAN %s bounced: the check digits are wrong." % spaced(bad_de), [], [spaced(bad_de)])
row("Typo in %s - the bank rejected it; correct is %s." % (bad_gb, ibans["GB"]),
    [("iban", ibans["GB"])], [bad_gb])
row("Product code XX12 3456 7890 1234 5678 is not a bank account.", [], ["XX12 3456 7890 1234 5678"])

# National IDs
ssns = ["123-45-6789", "536-22-8145", "401-33-1299", "772-10-4821", "123 45 6789"]
for i, s in enumerate(ssns):
    assert ssn_ok(s)
    row(["My SSN is %s, fill in the W-4 for me.", "Applicant SSN: %s (verify with the IRS).",
         "Employee %s needs a new badge.", "Check whether %s appears in the HR export.",
         "Tax form lists %s as the dependent's number."][i] % s, [("national_id", s)])
bad_ssns = ["000-12-3456", "666-45-1234", "912-34-5678", "123-00-4567", "123-45-0000", "078-05-1120"]
for b in bad_ssns:
    assert not ssn_ok(b)
row("Test data uses invalid SSNs 000-12-3456, 666-45-1234 and 912-34-5678.", [],
    ["000-12-3456", "666-45-1234", "912-34-5678"])
row("Also invalid: 123-00-4567, 123-45-0000, and the specimen 078-05-1120.", [],
    ["123-00-4567", "123-45-0000", "078-05-1120"])
ninos = ["AB123456C", "JG 10 37 63 A", "CE 12 34 56 D", "PR987654B"]
for i, n in enumerate(ninos):
    row(["National Insurance number %s, please update payroll.", "NI: %s - is this format correct?",
         "HMRC letter quotes %s for my tax code.", "His NINO is %s."][i] % n, [("national_id", n)])
row("Invalid NINOs for the validator test: GB123456A, DA123456A, AB123456E, ZZ123456A.", [],
    ["GB123456A", "DA123456A", "AB123456E", "ZZ123456A"])
dnis = [dni_make("12345678"), dni_make("87654321"), nie_make("X", "1234567"), nie_make("Y", "7654321")]
for i, d in enumerate(dnis):
    row(["Mi DNI es %s, rellena el formulario.", "DNI del titular: %s.", "NIE %s para el contrato de alquiler.",
         "El NIE %s caduca en marzo."][i] % d, [("national_id", d)])
bad_dni = "12345678" + DNI_LETTERS[(int("12345678") + 1) % 23]
row("El DNI %s tiene la letra mal." % bad_dni, [], [bad_dni])
cf1 = "RSSMRA85T10A562S"
cf2_body = "BNCGVN80A01H501"
cf2 = cf2_body + cf_check(cf2_body)
cf3_body = "VRDLCU92E45F205"
cf3 = cf3_body + cf_check(cf3_body)
assert cf_check(cf1[:15]) == cf1[15]
for i, c in enumerate([cf1, cf2, cf3]):
    row(["Il mio codice fiscale è %s.", "Codice fiscale del cliente: %s, verifica.", "CF %s sul contratto."][i] % c,
        [("national_id", c)])
bad_cf = cf1[:15] + chr((ord(cf1[15]) - 65 + 1) % 26 + 65)
row("Il codice %s ha il carattere di controllo sbagliato." % bad_cf, [], [bad_cf])
aadhaars = [aadhaar_make("23456789012"), aadhaar_make("98765432109"), aadhaar_make("40001234567")]
for i, a in enumerate(aadhaars):
    text = group(a, (4, 4, 4), " " if i != 1 else "-")
    row(["My Aadhaar number is %s.", "Aadhaar %s linked to the bank account.", "KYC form: Aadhaar %s."][i] % text,
        [("national_id", text)])
bad_aadhaar = aadhaars[0][:-1] + str((int(aadhaars[0][-1]) + 1) % 10)
assert not verhoeff_ok(bad_aadhaar)
row("Aadhaar %s fails the Verhoeff check." % group(bad_aadhaar, (4, 4, 4)), [], [group(bad_aadhaar, (4, 4, 4))])

# IP addresses
ips = [
    ("The server at 192.168.1.10 refuses SSH connections.", "192.168.1.10"),
    ("Whitelist 203.0.113.45 in the firewall.", "203.0.113.45"),
    ("Why does ping 8.8.8.8 work but DNS fails?", "8.8.8.8"),
    ("Our VPN gateway is 10.0.0.1, port 1194.", "10.0.0.1"),
    ("nginx logs show 172.16.254.3 - - [10/Oct/2023:13:55:36] GET /", "172.16.254.3"),
    ("Block 2001:db8::1 on the edge router.", "2001:db8::1"),
    ("Full form 2001:0db8:85a3:0000:0000:8a2e:0370:7334 needs compressing.", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
    ("Link-local fe80::1ff:fe23:4567:890a shows up in ifconfig.", "fe80::1ff:fe23:4567:890a"),
    ("Bind to ::1 only, not to all interfaces.", "::1"),
    ("The mapped address ::ffff:192.0.2.128 confuses the parser.", "::ffff:192.0.2.128"),
    ("Cloudflare DNS over IPv6 is 2606:4700:4700::1111.", "2606:4700:4700::1111"),
    ("Route 2001:db8:85a3::8a2e:370:7334 through the tunnel.", "2001:db8:85a3::8a2e:370:7334"),
    ("The ULA prefix fd12:3456:789a:1::1 is assigned to the lab.", "fd12:3456:789a:1::1"),
]
for p, v in ips:
    row(p, [("ip", v)])
row("Connect 192.168.1.10 to 192.168.1.11; 192.168.1.10 is the primary.",
    [("ip", "192.168.1.10"), ("ip", "192.168.1.11")])
row("Upgrade from version 1.2.3.4 to v2.0.0.1 before Friday.", [], ["version 1.2.3.4", "v2.0.0.1"])
row("999.1.1.1 and 256.100.50.25 are not valid addresses.", [], ["999.1.1.1", "256.100.50.25"])
row("Windows build 10.0.19041.1 ships with it; see section 4.2.1.3.", [], ["build 10.0.19041.1", "section 4.2.1.3"])
row("The OID 1.3.6.1.4.1 and the dotted 1.2.3.4.5 are not addresses.", [], ["1.3.6.1.4.1", "1.2.3.4.5"])
row("Times 12:30:45 and MAC 00:1A:2B:3C:4D:5E are not IPv6; nor is std::vector.", [],
    ["12:30:45", "00:1A:2B:3C:4D:5E", "std::vector"])
row("Leading zeros 01.02.03.04 make it a version, not an IP.", [], ["01.02.03.04"])
row("Release v10.0.0.1 fixed the ratio 1:2:3 bug.", [], ["v10.0.0.1", "1:2:3"])

# Secrets: prefixed tokens
aws = "AKIA" + rand(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
ghp = "ghp_" + rand(36)
gho = "gho_" + rand(36)
gh_pat = "github_pat_" + rand(22) + "_" + rand(59)
slack_b = "xoxb-" + rand(12, "0123456789") + "-" + rand(13, "0123456789") + "-" + rand(24)
slack_p = "xoxp-" + rand(11, "0123456789") + "-" + rand(24)
openai = "sk-proj-" + mixed(48)
openai_old = "sk-" + mixed(48)
anthropic = "sk-ant-api03-" + mixed(80)
google = "AIza" + "Sy" + rand(33, ALNUM + "_-")
jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0." + rand(43, ALNUM + "_-")
stripe = "sk_live_" + rand(24)
stripe_r = "rk_live_" + rand(24)
whsec = "whsec_" + rand(32)
hf = "hf_" + rand(34)
npm = "npm_" + rand(36)
glpat = "glpat-" + rand(20)
sendgrid = "SG." + rand(22, ALNUM + "_-") + "." + rand(43, ALNUM + "_-")
slack_hook = "https://hooks.slack.com/services/T" + rand(8, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") + "/B" + \
    rand(8, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") + "/" + rand(24)
token_rows = [
    ("My AWS key %s stopped working after rotation, why?", aws),
    ("git push fails with token %s - is it expired?", ghp),
    ("The OAuth app returned %s, how do I revoke it?", gho),
    ("Fine-grained PAT %s lacks the repo scope.", gh_pat),
    ("Slack bot token %s posts to the wrong channel.", slack_b),
    ("User token %s for the Slack export script.", slack_p),
    ("Set OPENAI_API_KEY to %s in the shell.", openai),
    ("Legacy key %s still works in curl.", openai_old),
    ("The Claude client is configured with %s.", anthropic),
    ("Maps JavaScript API key %s is restricted to our domain.", google),
    ("Decode this JWT: %s", jwt),
    ("Stripe live key %s leaked in a log?", stripe),
    ("Restricted Stripe key %s for the reporting job.", stripe_r),
    ("Webhook signing secret %s does not verify.", whsec),
    ("huggingface-cli login with %s fails.", hf),
    ("The .npmrc has //registry.npmjs.org/:_authToken=%s", npm),
    ("GitLab CI uses %s to clone.", glpat),
    ("SendGrid returns 401 for %s.", sendgrid),
    ("Post alerts to %s from the cron job.", slack_hook),
]
for p, v in token_rows:
    row(p % v, [("secret", v)])
row("In scikit-learn (sk-learn-pipeline) the task-list and the AKIA1234 stub are not keys; ghp_short neither.",
    [], ["sk-learn-pipeline", "task-list", "AKIA1234", "ghp_short"])
row("The commit a94a8fe5ccb19ba61c4c0873d391e987982fbbd3 and short sha 3f2a1bc touched UUID 123e4567-e89b-12d3-a456-426614174000.",
    [], ["a94a8fe5ccb19ba61c4c0873d391e987982fbbd3", "3f2a1bc", "123e4567-e89b-12d3-a456-426614174000"])
row("Colors #ff5733, #FFF and #1e90ff; ISBN 978-3-16-148410-0 and 0-306-40615-2.", [],
    ["#ff5733", "#FFF", "#1e90ff", "978-3-16-148410-0", "0-306-40615-2"])

# Secrets: PEM blocks
pem_body = "\n".join(rand(64, ALNUM + "+/") for _ in range(4)) + "\n" + rand(20, ALNUM + "+/") + "=="
pem_rsa = "-----BEGIN RSA PRIVATE KEY-----\n" + pem_body + "\n-----END RSA PRIVATE KEY-----"
pem_pk = "-----BEGIN PRIVATE KEY-----\n" + pem_body[::-1] + "\n-----END PRIVATE KEY-----"
pem_ec = "-----BEGIN EC PRIVATE KEY-----\n" + rand(64, ALNUM + "+/") + "\n-----END EC PRIVATE KEY-----"
pem_ssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA" + rand(40) + "\n-----END OPENSSH PRIVATE KEY-----"
pem_trunc = "-----BEGIN PRIVATE KEY-----\n" + rand(64, ALNUM + "+/") + "\n" + rand(64, ALNUM + "+/")
row("Why does ssh reject this key?\n" + pem_rsa + "\nIt was generated with openssl.", [("secret", pem_rsa)])
row("Convert to PKCS#1:\n" + pem_pk + "\nThanks!", [("secret", pem_pk)])
row("This EC key is for the staging cert:\n" + pem_ec, [("secret", pem_ec)])
row("ssh-keygen made this:\n" + pem_ssh + "\nwhat format is it?", [("secret", pem_ssh)])
row("I pasted only part of it:\n" + pem_trunc, [("secret", pem_trunc)])
pem_inner = "-----BEGIN PRIVATE KEY-----\nMIIEvQ admin@example.com 10.0.0.1\n-----END PRIVATE KEY-----"
row("A PEM block swallows what is inside it:\n" + pem_inner + "\nok?", [("secret", pem_inner)])
row("Public keys are fine: -----BEGIN PUBLIC KEY----- is not secret, nor is -----BEGIN CERTIFICATE-----.", [],
    ["-----BEGIN PUBLIC KEY-----", "-----BEGIN CERTIFICATE-----"])

# Secrets: key = value assignments and bearer tokens
assignments = [
    ("Why does login fail with password=hunter2 in the config?", "hunter2", "password="),
    ("The .env has passwd: s3cr3t!Pa55 and nothing else.", "s3cr3t!Pa55", "passwd: "),
    ("secret: \"my secret value\" is in the YAML, is that safe?", "my secret value", "secret: \""),
    ("api_key=abc123def456ghi789 is rejected by the API.", "abc123def456ghi789", "api_key="),
    ("token: xyz789abc000 expires in an hour.", "xyz789abc000", "token: "),
    ("export DB_PASSWORD=Tr0ub4dor&3 before running the migration.", "Tr0ub4dor&3", "DB_PASSWORD="),
    ("The JSON is {\"user\": \"admin\", \"password\": \"p@ssw0rd!\"}; fix the schema.", "p@ssw0rd!", "\"password\": \""),
    ("client_secret='9f8e7d6c5b4a' in settings.py.", "9f8e7d6c5b4a", "client_secret='"),
    ("Header X-API-KEY: 0a1b2c3d4e5f6a7b8c9d is required.", "0a1b2c3d4e5f6a7b8c9d", "X-API-KEY: "),
    ("access_token=ya29.a0AfH6SMBx123 in the query string.", "ya29.a0AfH6SMBx123", "access_token="),
    ("pwd = Summer2024! for the shared drive.", "Summer2024!", "pwd = "),
    ("passphrase: 'correct horse battery staple' protects the key.", "correct horse battery staple", "passphrase: '"),
    ("GITHUB_TOKEN := abcDEF123456 in the Makefile.", "abcDEF123456", "GITHUB_TOKEN := "),
    ("In PHP: $config['secret_key'] => 'k3y-Th4t-M4tt3rs';", "k3y-Th4t-M4tt3rs", "'secret_key'] => '"),
    ("Rotate the refresh_token=rt_9a8b7c6d5e4f today.", "rt_9a8b7c6d5e4f", "refresh_token="),
    ("The ODBC string Server=db1;Uid=sa;Pwd=Zq7!mUx2;Database=crm fails.", "Zq7!mUx2", "Pwd="),
    ("~/.aws/credentials: aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key = "),
    ("TOKEN=\"q8Zr2Lm0Xc7Vb\" is read from the environment.", "q8Zr2Lm0Xc7Vb", "TOKEN=\""),
]
for p, v, key in assignments:
    row(p, [("secret", v)], [key])
bearers = [
    ("curl -H 'Authorization: Bearer XYZ' https://api.example.com/v1/me", "XYZ", "Authorization: Bearer "),
    ("Authorization: Bearer abc123.def456-ghi789 returns 403.", "abc123.def456-ghi789", "Authorization: Bearer "),
    ("The client sends bearer Zm9vYmFyYmF6 on every request.", "Zm9vYmFyYmF6", "bearer "),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA== is in the nginx log.", "dXNlcjpwYXNzd29yZA==", "Authorization: Basic "),
    ("Proxy-Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l must be stripped.", "YWxhZGRpbjpvcGVuc2VzYW1l", "Proxy-Authorization: Basic "),
    ("Use Authorization: token 4f3e2d1c0b9a8f7e6d5c for the old API.", "4f3e2d1c0b9a8f7e6d5c", "Authorization: token "),
]
for p, v, key in bearers:
    row(p, [("secret", v)], [key])
row("Set max_tokens: 512 and max_new_tokens=256; the context holds 4096 tokens.", [],
    ["max_tokens: 512", "max_new_tokens=256", "4096 tokens"])
row("Password: click the link below to reset it. Token: a unit of text for the model.", [],
    ["Password: click the link", "Token: a unit of text"])
row("He was the bearer of bad news; Bearer Bonds is a film. The password_reset_url=/reset route works.", [],
    ["bearer of bad news", "Bearer Bonds", "password_reset_url=/reset"])
row("The secret_santa list and the tokenizer=bpe setting are not credentials.", [],
    ["secret_santa", "tokenizer=bpe"])
row("The EOS token: </s> has id token: 50256; token = 1 marks the start.", [],
    ["token: </s>", "token: 50256", "token = 1"])
row("settings.py reads secret=${SECRET} and password = None when unset; pwd=***** in the logs.", [],
    ["secret=${SECRET}", "password = None", "pwd=*****"])

# URL credentials
urls = [
    ("git clone https://alice:s3cret@github.com/org/repo.git fails with 403.", "alice:s3cret", "@github.com/org/repo.git"),
    ("DATABASE_URL=postgres://admin:Pa55w0rd@db.internal:5432/app is not picked up.", "admin:Pa55w0rd", "@db.internal:5432/app"),
    ("Redis URL redis://:mypassword@cache.local:6379/0 times out.", ":mypassword", "@cache.local:6379/0"),
    ("Download ftp://user:pass@ftp.example.com/file.zip with wget.", "user:pass", "@ftp.example.com/file.zip"),
    ("mongodb+srv://dbuser:Xy9%21pass@cluster0.mongodb.net/test?retryWrites=true is the connection string.", "dbuser:Xy9%21pass", "@cluster0.mongodb.net/test"),
    ("amqp://guest:guest@rabbit:5672/ refuses the connection.", "guest:guest", "@rabbit:5672/"),
    ("The proxy https://john.doe@example.com:hunter2@proxy.corp.net:8080/ asks again.", "john.doe@example.com:hunter2", "@proxy.corp.net:8080/"),
    ("Mirror at https://deploy:p@ss@word@mirror.example.org/pkgs", "deploy:p@ss@word", "@mirror.example.org/pkgs"),
]
for p, v, keep in urls:
    row(p, [("url_credentials", v)], [keep])
row("Plain URLs stay: https://example.com:8080/path, http://localhost:3000/api and https://docs.python.org/3/.", [],
    ["https://example.com:8080/path", "http://localhost:3000/api", "https://docs.python.org/3/"])

# Mixed prompts
row("Hi, I'm Jane (jane.roe@example.org, +1 415 555 2671). My card 5555 5555 5555 4444 was charged twice; "
    "refund to %s please." % spaced(ibans["NL"]),
    [("email", "jane.roe@example.org"), ("phone", "+1 415 555 2671"), ("card", "5555 5555 5555 4444"),
     ("iban", spaced(ibans["NL"]))])
row("Server 10.20.30.40 rejects password=Winter2023! from admin@corp.example; version 1.2.3.4 of the agent, see PROJ-4821.",
    [("ip", "10.20.30.40"), ("secret", "Winter2023!"), ("email", "admin@corp.example")],
    ["version 1.2.3.4", "PROJ-4821", "password="])
row("Summarize: on 2024-03-15 at 10:30 the customer (SSN 123-45-6789, phone 020 7946 0958) paid $1,249.99 "
    "with 4111 1111 1111 1111. Order #48213, ticket INC0012345.",
    [("national_id", "123-45-6789"), ("phone", "020 7946 0958"), ("card", "4111 1111 1111 1111")],
    ["2024-03-15", "10:30", "$1,249.99", "#48213", "INC0012345"])
row("Recipe: 250 g flour, 2 eggs, bake at 180 C for 25 minutes; serves 4. Costs about 3.50 EUR.", [],
    ["250 g", "180 C", "25 minutes", "3.50 EUR"])
row("The model has 0.5B parameters, trained for 3 epochs at lr 0.0003 on 1,000,000 samples (v1.4.2).", [],
    ["0.5B", "0.0003", "1,000,000", "v1.4.2"])
row("Coordinates 37.7749, -122.4194 and pi 3.14159265358979 are numbers, not PII.", [],
    ["37.7749, -122.4194", "3.14159265358979"])
row("Semver 1.0.0-rc.1 and 2.10.4 are versions; page 123 of 456; 50% off until 12/31.", [],
    ["1.0.0-rc.1", "2.10.4", "page 123 of 456", "12/31"])
row("Write a SQL query joining users and orders on user_id where total > 100.", [], [])
row("Explain the difference between TCP and UDP in two paragraphs.", [], [])
row("Contact sales@acme.example or support@acme.example; both reply within 24 hours. Call +44 161 496 0000.",
    [("email", "sales@acme.example"), ("email", "support@acme.example"), ("phone", "+44 161 496 0000")],
    ["24 hours"])
row("ssh deploy@203.0.113.7 -i key.pem then curl http://10.1.2.3:8080/health",
    [("ip", "203.0.113.7"), ("ip", "10.1.2.3")], ["deploy@", ":8080/health"])
row("My details: Max Mustermann, IBAN %s, Tel. 030 12345678, E-Mail max@mustermann.de." % spaced(ibans["DE"]),
    [("iban", spaced(ibans["DE"])), ("phone", "030 12345678"), ("email", "max@mustermann.de")])

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pii_set.jsonl")
with open(out, "w", encoding="utf-8") as f:
    for r in rows:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
n_look = sum(len(r["lookalikes"]) for r in rows)
cats = sorted({v["category"] for r in rows for v in r["values"]})
print("%d rows, %d values, %d look-alikes in %d rows, categories: %s" % (
    len(rows), sum(len(r["values"]) for r in rows), n_look, sum(1 for r in rows if r["lookalikes"]), ", ".join(cats)))
