"""The varied parity corpus shared by the tokenizer fixture generator and its tests."""

CORPUS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    " leading space",
    "trailing space ",
    "  two leading spaces and two trailing  ",
    "",
    " ",
    "   ",
    "\n",
    "\n\n\n",
    "line one\nline two\r\nline three\rline four",
    "a\n\n\nb",
    "tabs\tand\t\tdouble tabs\t",
    "   \t  \n  mixed whitespace   \n\t",
    "trailing newline\n",
    "words   with    many     spaces",
    "It's, they're, we've, I'm, you'll, he'd, she's.",
    "IT'S LOUD! THEY'RE HERE, WE'VE GOT IT, I'M OK, YOU'LL SEE, HE'D KNOW",
    "don't can't won't isn't o'clock rock'n'roll 'quoted' ''",
    "Numbers: 1 12 123 1234 12345 1234567890 3.14159 -42 +7 1,000,000 1e-9",
    "Dates 2024-01-31, times 12:34:56, versions v1.2.3",
    "Unicode digits: ٠١٢٣٤٥٦٧٨٩ ० १ २ ३ ½ ² ³ Ⅻ ⑦",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
    "let x: [Int] = [1, 2, 3].map { $0 * 2 } // doubled",
    "<html><body class=\"main\">&nbsp;&amp;</body></html>",
    "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;",
    "{\"key\": \"value\", \"list\": [1, 2.5, null, true]}",
    "https://example.com/path?query=1&other=two#frag",
    "email@example.org, @handle, #hashtag, $100, 50%, ~/dir, a|b, x^y",
    "!!! ??? ... --- ___ *** ### ((()))",
    "Café naïve résumé coöperate façade jalapeño",
    "Straße Größe Übung ÄÖÜ äöü ß ẞ",
    "Ελληνικά: Καλημέρα κόσμε, ΟΔΟΣ οδός",
    "Русский текст: Привет, мир! Съешь же ещё этих мягких французских булок.",
    "日本語のテキスト：こんにちは世界。東京は大きい。",
    "中文：你好，世界！我爱自然语言处理。",
    "한국어: 안녕하세요 세계",
    "ภาษาไทย สวัสดีครับ",
    "हिन्दी: नमस्ते दुनिया",
    "العربية: مرحبا بالعالم ١٢٣",
    "עברית: שלום עולם",
    "Mixed RTL: hello שלום world مرحبا 123",
    "Emoji: 😀 😃 😄 👍🏽 ❤️ 🇺🇸 🇯🇵",
    "ZWJ family: 👨‍👩‍👧‍👦 and 👩🏾‍💻 and 🏳️‍🌈",
    "Combining: e\u0301 a\u0300 o\u0308 n\u0303 \u0065\u0301\u0302 Z\u0351\u0352\u0353",
    "Precomposed vs decomposed: \u00e9 vs e\u0301, \u212b vs \u00c5 vs A\u030a",
    "Compatibility: \ufb01 \ufb02 \u2460 \uff21\uff22\uff23 \u00bd \u2126 \u3000full-width space",
    "Zero width: a\u200bb c\u200cd e\u200df \ufeffg",
    "Odd spaces: a\u00a0b c\u2003d e\u2009f g\u202fh i\u3000j",
    "Line separators: a\u2028b\u2029c\u0085d",
    "Control chars: \u0001\u0002\u001b[0m\u007f",
    "Math: ∀x∈ℝ, x² ≥ 0; ∑ᵢ aᵢ = π ≈ 3.14 ∞ √2",
    "Currency: € £ ¥ ₹ ₿ ¢",
    "Quotes: “double” ‘single’ «guillemets» „low“",
    "Dashes: en – em — minus − hyphen ‐ ellipsis …",
    "Special tokens <|endoftext|> inside text",
    "<|endoftext|>",
    "<|endoftext|><|endoftext|>",
    "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi!<|im_end|>",
    "<s>[INST] question [/INST] answer </s>",
    "start <s> middle </s> end",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "almost special <|endoftext| and <|im_start and </ s>",
    "added tokens: hello <mask> world <mask>, x<mask>y and  <mask>  spaced",
    "single word: [WORD] ok, not[WORD]this, [WORD]",
    "normalized added: custom_token and CUSTOM_TOKEN",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "abababababababababababababababababababababababababababababab",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "The year 1984 and 2001: A Space Odyssey; route 66; 007; 3.000.000,00",
    "Mr. Smith went to Washington D.C. on Jan. 5th at 3 p.m.",
    "CamelCaseIdentifiers and snake_case_names and SCREAMING_CASE",
    "    indented code block\n        deeper\n\ttabbed",
    "Windows\r\nline\r\nendings\r\n",
    "\r\n\r\n",
    " \n \n ",
    "end with spaces then newline   \n",
    "x  \ny",
    "hello\u00a0\u00a0world",
    "a'b'c 'S 'T 'RE 'VE 'M 'LL 'D 'x '\u017f",
    "Łódź, Kraków, Gdańsk; İstanbul, ılık; Đà Nẵng",
    "Old Italic 𐌀𐌁𐌂, Gothic 𐌰𐌱𐌲, math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛",
    "Ideographic 漢字仮名交じり文 と ひらがな カタカナ ｶﾀｶﾅ",
    "Tibetan ཀ་ཁ་ག and Devanagari conjunct क्षत्रिय",
    "The end.",
]

# Prose used (together with the corpus) to train the small built tokenizers.
TRAINING_TEXT = """
Machine unlearning asks whether a trained model can be made to behave as if some of its training data
had never been seen. A model trained in stages learns one dataset after another; the order of the stages
shapes the final weights. Retraining from scratch without the forgotten stage is the gold standard, but it
is expensive, so local algorithms such as gradient ascent, NPO and SimNPO update the model directly.
The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs. How vexingly quick
daft zebras jump! Sphinx of black quartz, judge my vow. The five boxing wizards jump quickly.
It's a truth universally acknowledged that they're often wrong; we've seen it, I'm sure you'll agree.
def train(model, data, epochs=3):
    for epoch in range(epochs):
        for batch in data:
            loss = model(batch).mean()
            loss.backward()
    return model
Numbers like 1, 2, 3, 10, 100, 1000, 2024 and 3.14159 appear often in text and code.
Hello world! Hello again, world. Goodbye, cruel world; hello, brave new world.
"""
