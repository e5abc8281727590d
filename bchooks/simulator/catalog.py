"""Reference data for the simulator: products, people, places and money rules. Data only."""

from decimal import Decimal

#: (name, category, [(option name, price)])
PRODUCTS = (
    ("Risograph Print: Night Garden", "Prints", [("A4", "18.0"), ("A3", "28.0")]),
    ("Risograph Print: Tide Pools", "Prints", [("A4", "18.0"), ("A3", "28.0")]),
    ("Enamel Pin: Moth", "Pins", [("", "10.0")]),
    ("Enamel Pin: Snail Mail", "Pins", [("", "10.0")]),
    ("Zine #7: Small Hours", "Zines", [("", "8.5")]),
    ("Zine #8: Salt", "Zines", [("", "8.5")]),
    ("Screenprinted Tee: Fern", "Apparel", [("S", "30.0"), ("M", "30.0"), ("L", "30.0"), ("XL", "32.0")]),
    ("Screenprinted Tee: Heron", "Apparel", [("S", "30.0"), ("M", "30.0"), ("L", "30.0"), ("XL", "32.0")]),
    ("Tote Bag: Market Day", "Apparel", [("", "22.0")]),
    ("Sticker Pack", "Stickers", [("", "6.0")]),
    ("Holographic Sticker: Comet", "Stickers", [("", "4.25")]),
    ("Ceramic Mug: Lighthouse", "Homeware", [("12 oz", "26.0"), ("16 oz", "29.0")]),
    ("Linocut Card Set", "Stationery", [("Set of 5", "15.0"), ("Set of 10", "27.5")]),
    ("Art Book: Field Notes", "Books", [("Softcover", "35.0"), ("Signed", "45.0")]),
    ("Embroidered Patch: Owl", "Patches", [("", "9.0")]),
    ("Original Painting: Harbour at Dusk", "Originals", [("", "420.0")]),
    ("Vinyl LP: Quiet Rooms", "Music", [("Black", "24.0"), ("Clear", "28.0")]),
    ("Cassette: Quiet Rooms", "Music", [("", "9.99")]),
    ("Poster: Summer Tour", "Prints", [("18x24", "20.0")]),
    ("Keychain: Tiny Cactus", "Accessories", [("", "7.5")]),
)

#: country id -> (country name, currency id, shipping flat rate, tax rate, cities [(city, state, zip, lat, lng)])
COUNTRIES = {
    "US": ("United States", "USD", "5.0", "0.07", [("Portland", "OR", "97205", "45.52", "-122.68"),
                                                   ("Austin", "TX", "78701", "30.27", "-97.74"),
                                                   ("Brooklyn", "NY", "11201", "40.69", "-73.99")]),
    "CA": ("Canada", "CAD", "9.0", "0.13", [("Toronto", "ON", "M5V 2T6", "43.64", "-79.39"),
                                            ("Montreal", "QC", "H2X 1Y4", "45.51", "-73.57")]),
    "GB": ("United Kingdom", "GBP", "6.5", "0.2", [("Bristol", "", "BS1 4DJ", "51.45", "-2.59"),
                                                   ("Leeds", "", "LS1 4AP", "53.80", "-1.55")]),
    "DE": ("Germany", "EUR", "8.0", "0.19", [("Berlin", "", "10115", "52.53", "13.38"),
                                             ("Leipzig", "", "04109", "51.34", "12.37")]),
    "FR": ("France", "EUR", "8.0", "0.2", [("Lyon", "", "69001", "45.76", "4.83")]),
    "NL": ("Netherlands", "EUR", "7.5", "0.21", [("Utrecht", "", "3511", "52.09", "5.12")]),
    "AU": ("Australia", "AUD", "14.0", "0.1", [("Melbourne", "VIC", "3000", "-37.81", "144.96")]),
}
#: how often each country appears (weights)
COUNTRY_WEIGHTS = {"US": 50, "CA": 10, "GB": 14, "DE": 9, "FR": 6, "NL": 4, "AU": 7}

CURRENCIES = {
    "USD": ("U.S. Dollar", "$", "en-US"),
    "CAD": ("Canadian Dollar", "$", "en-CA"),
    "GBP": ("British Pound", "£", "en-GB"),
    "EUR": ("Euro", "€", "de-DE"),
    "AUD": ("Australian Dollar", "$", "en-AU"),
}

#: product prices are set in USD; other currencies use these rates and round to the cent
FX = {"USD": Decimal("1"), "CAD": Decimal("1.35"), "GBP": Decimal("0.79"), "EUR": Decimal("0.92"),
      "AUD": Decimal("1.5")}

FIRST_NAMES = ("Ada", "Bea", "Cal", "Dev", "Eli", "Fern", "Gus", "Hana", "Ines", "Jun", "Kai", "Lena", "Milo", "Nia",
               "Otto", "Pia", "Quinn", "Rosa", "Sam", "Tove", "Uma", "Vik", "Wren", "Yara", "Zoe", "Ana", "Björn",
               "Chloé", "Dário", "Émile")
LAST_NAMES = ("Abbott", "Berg", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jansen", "Kowalski",
              "Larsen", "Moreau", "Nakamura", "O'Brien", "Patel", "Quist", "Rossi", "Schmidt", "Tanaka", "Novak",
              "Van Dijk", "Walsh", "Young", "Zhang", "Müller", "Nguyen", "Silva", "Okafor", "Lindqvist")
STREETS = ("Main St", "Harbour Rd", "Mill Lane", "Elm Ave", "Canal St", "Station Rd", "Rue Centrale", "Hauptstraße",
           "Kingsway", "Bay St")
NOTES = ("", "", "", "", "Gift wrap please!", "Love your work", "Please ship together", "Birthday present 🎂")
DISCOUNT_RATES = (Decimal("0"), Decimal("0"), Decimal("0"), Decimal("0.1"), Decimal("0.15"))
#: the code a buyer typed for each discount rate (Big Cartel writes it in the discount adjustment's label)
DISCOUNT_CODES = {Decimal("0.1"): "WELCOME10", Decimal("0.15"): "SUMMER15"}
