import Engine

// Word lists the generators draw from. Stage data and pretraining documents share them, so that a
// small model trained from scratch has seen every word of the stages before the stages start.

extension SeededRandom {
    mutating func pick<T>(_ a: [T]) -> T { a[nextInt(a.count)] }

    /// Uniform integer in `r`.
    mutating func int(_ r: ClosedRange<Int>) -> Int { r.lowerBound + nextInt(r.upperBound - r.lowerBound + 1) }

    mutating func chance(_ p: Double) -> Bool { nextDouble() < p }

    /// `k` distinct elements of `a` in random order (all of `a` if `k >= a.count`).
    mutating func sample<T>(_ a: [T], _ k: Int) -> [T] {
        var idx = Array(a.indices)
        let k = min(k, idx.count)
        for i in 0..<k {
            let j = i + nextInt(idx.count - i)
            idx.swapAt(i, j)
        }
        return idx[0..<k].map { a[$0] }
    }
}

enum Vocabulary {
    static let femaleNames = [
        "Ada", "Alma", "Anya", "Beatrix", "Carla", "Celia", "Dalia", "Edith", "Elena", "Freya", "Greta", "Hana",
        "Ines", "Irene", "Jana", "Julia", "Kira", "Lena", "Lucia", "Mara", "Maya", "Nadia", "Nina", "Olga",
        "Paula", "Rosa", "Sara", "Selma", "Tessa", "Vera", "Wanda", "Yara", "Zoe", "Clara", "Agnes", "Marta",
    ]
    static let maleNames = [
        "Adam", "Anton", "Bruno", "Carlos", "Dario", "Elias", "Emil", "Felix", "Goran", "Hugo", "Ivan", "Jonas",
        "Karl", "Leon", "Luca", "Marco", "Milan", "Nico", "Oscar", "Pablo", "Rafael", "Samir", "Stefan", "Tomas",
        "Victor", "Viktor", "Walter", "Yusuf", "Omar", "Pedro", "Henrik", "Mateo", "Arjun", "Kenji", "Tariq", "Lars",
    ]
    /// Invented surnames are prefix + middle + suffix. The entity stage and the pretraining corpus
    /// use disjoint suffix sets, so no stage entity ever appears in pretraining.
    static let surnamePrefixes = [
        "Al", "Bren", "Cal", "Dor", "El", "Fen", "Gar", "Hal", "Is", "Jor", "Kel", "Lor", "Mar", "Nor", "Or",
        "Pel", "Quin", "Ros", "Sel", "Tor", "Ul", "Val", "Wyn", "Yor", "Zel", "Bar", "Cor", "Dun", "Ev", "Grim",
    ]
    static let surnameMiddles = ["", "a", "e", "i", "o", "an", "en", "ar", "er", "in"]
    static let stageSurnameSuffixes = ["dane", "ford", "ley", "mont", "ridge", "ton", "vale", "wood", "burn", "lund"]
    static let pretrainSurnameSuffixes = ["by", "croft", "field", "gate", "holm", "mere", "stead", "wick", "shaw", "thorne"]

    static let places: [(city: String, country: String)] = [
        ("Lisbon", "Portugal"), ("Porto", "Portugal"), ("Madrid", "Spain"), ("Seville", "Spain"), ("Lyon", "France"),
        ("Marseille", "France"), ("Turin", "Italy"), ("Naples", "Italy"), ("Munich", "Germany"), ("Hamburg", "Germany"),
        ("Krakow", "Poland"), ("Gdansk", "Poland"), ("Prague", "Czechia"), ("Vienna", "Austria"),
        ("Budapest", "Hungary"), ("Oslo", "Norway"), ("Bergen", "Norway"), ("Uppsala", "Sweden"), ("Helsinki", "Finland"),
        ("Tallinn", "Estonia"), ("Dublin", "Ireland"), ("Cork", "Ireland"), ("Edinburgh", "Scotland"), ("Cardiff", "Wales"),
        ("Athens", "Greece"), ("Istanbul", "Turkey"), ("Cairo", "Egypt"), ("Nairobi", "Kenya"), ("Lagos", "Nigeria"),
        ("Accra", "Ghana"), ("Mumbai", "India"), ("Chennai", "India"), ("Osaka", "Japan"), ("Kyoto", "Japan"),
        ("Seoul", "South Korea"), ("Hanoi", "Vietnam"), ("Jakarta", "Indonesia"), ("Sydney", "Australia"),
        ("Auckland", "New Zealand"), ("Toronto", "Canada"), ("Montreal", "Canada"), ("Vancouver", "Canada"), ("Rosario", "Argentina"),
        ("Lima", "Peru"), ("Santiago", "Chile"), ("Bogota", "Colombia"), ("Havana", "Cuba"), ("Quito", "Ecuador"),
    ]
    static let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                         "October", "November", "December"]
    static let genres = [
        "science fiction", "historical fiction", "mystery", "fantasy", "poetry", "romance", "horror", "biography",
        "travel writing", "children's literature", "crime fiction", "literary fiction", "humor", "drama", "short stories",
    ]
    static let professions = [
        "teacher", "doctor", "baker", "carpenter", "nurse", "farmer", "engineer", "librarian", "painter", "musician",
        "pilot", "chef", "architect", "journalist", "photographer", "lawyer", "mechanic", "tailor", "fisherman",
        "gardener", "pharmacist", "accountant", "electrician", "florist", "translator", "potter", "dentist", "sailor",
    ]
    static let writerProfessions = ["novelist", "poet", "journalist", "screenwriter", "playwright", "essayist",
                                    "children's author", "biographer", "literary critic", "editor", "columnist", "historian"]
    static let awards = [
        "the Golden Quill Award", "the Silver Lantern Prize", "the Northern Star Medal", "the Blue Harbor Prize",
        "the Open Book Award", "the Iron Pen Prize", "the Evergreen Literary Award", "the Crystal Page Award",
        "the Red Maple Prize", "the Little Lighthouse Award", "the Amber Leaf Prize", "the Stone Bridge Award",
    ]
    static let languages = ["Portuguese", "Spanish", "French", "Italian", "German", "Polish", "Czech", "Hungarian",
                            "Norwegian", "Swedish", "Finnish", "Greek", "Turkish", "Japanese", "Korean", "English"]
    static let subjects = ["history", "philosophy", "biology", "chemistry", "physics", "mathematics", "music",
                           "architecture", "economics", "linguistics", "geography", "astronomy", "medicine", "law"]
    static let hobbies = ["gardening", "playing chess", "sailing", "painting landscapes", "hiking in the mountains",
                          "cooking", "taking photographs", "watching birds", "making pottery", "cycling", "swimming",
                          "playing the piano", "knitting", "fishing"]
    static let titleAdjectives = ["Silent", "Amber", "Hidden", "Last", "Broken", "Golden", "Distant", "Quiet",
                                  "Burning", "Forgotten", "Winter", "Secret", "Endless", "Wandering", "Crimson", "Paper"]
    static let titleNouns = ["Harbor", "Garden", "River", "Lantern", "Mirror", "Forest", "Tower", "Orchard", "Island",
                             "Letter", "Clock", "Bridge", "Valley", "Kingdom", "Compass", "Window", "Shore", "Map"]
    static let titleTails = ["the Sky", "the North", "the Sea", "Ashes", "Glass", "the Hills", "Stone", "the City",
                             "Rain", "Morning", "the Old World", "Salt"]

    // Generic sentences and instruction inputs.
    static let adjectives = ["small", "large", "old", "young", "quiet", "bright", "dark", "happy", "tired", "clever",
                             "green", "red", "blue", "heavy", "light", "gentle", "brave", "curious", "warm", "cold",
                             "busy", "lazy", "tall", "short", "friendly", "noisy", "calm", "strange", "careful", "proud"]
    static let nouns = ["cat", "dog", "bird", "farmer", "teacher", "child", "river", "tree", "house", "boat", "garden",
                        "student", "horse", "window", "train", "village", "lamp", "book", "table", "mountain", "baker",
                        "market", "fox", "road", "cloud", "letter", "bridge", "kitchen", "painter", "school", "forest",
                        "city", "friend", "doctor", "ship", "flower", "door", "song", "wall", "field"]
    static let verbs = ["watched", "found", "carried", "painted", "visited", "followed", "cleaned", "opened", "built",
                        "crossed", "passed", "touched", "moved", "helped", "chased", "noticed", "repaired", "closed",
                        "remembered", "liked", "reached", "climbed", "counted", "called", "answered", "lifted"]
    static let places2 = ["near the river", "in the morning", "after lunch", "at the market", "before sunset",
                          "in the garden", "on the hill", "by the lake", "in the evening", "during the storm",
                          "under the bridge", "at the station"]
    static let categories: [(name: String, items: [String])] = [
        ("fruits", ["apple", "banana", "cherry", "grape", "lemon", "mango", "orange", "peach", "pear", "plum", "kiwi", "melon"]),
        ("colors", ["red", "blue", "green", "yellow", "purple", "orange", "black", "white", "brown", "pink", "gray"]),
        ("animals", ["cat", "dog", "horse", "rabbit", "lion", "tiger", "bear", "wolf", "fox", "deer", "goat", "sheep"]),
        ("vegetables", ["carrot", "potato", "onion", "pepper", "cabbage", "spinach", "pea", "bean", "leek", "radish"]),
        ("musical instruments", ["piano", "violin", "guitar", "flute", "drum", "trumpet", "cello", "harp", "clarinet"]),
        ("tools", ["hammer", "saw", "wrench", "drill", "chisel", "shovel", "rake", "ladder", "screwdriver", "pliers"]),
        ("vehicles", ["car", "bus", "train", "bicycle", "truck", "boat", "plane", "tram", "scooter", "ferry"]),
        ("weekdays", ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]),
        ("planets", ["Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune"]),
        ("sports", ["tennis", "football", "swimming", "cycling", "rowing", "golf", "hockey", "boxing", "skiing"]),
    ]
    static let antonyms: [(String, String)] = [
        ("hot", "cold"), ("big", "small"), ("fast", "slow"), ("happy", "sad"), ("light", "dark"), ("early", "late"),
        ("open", "closed"), ("up", "down"), ("old", "new"), ("strong", "weak"), ("rich", "poor"), ("full", "empty"),
        ("high", "low"), ("long", "short"), ("loud", "quiet"), ("wet", "dry"), ("hard", "soft"), ("near", "far"),
        ("first", "last"), ("clean", "dirty"), ("thick", "thin"), ("inside", "outside"),
        ("before", "after"), ("easy", "difficult"), ("true", "false"), ("win", "lose"), ("buy", "sell"),
        ("push", "pull"), ("begin", "end"), ("day", "night"), ("left", "right"), ("north", "south"),
    ]
    static let items = ["apples", "books", "marbles", "stickers", "coins", "pencils", "cookies", "cards", "stamps",
                        "shells", "balloons", "candles", "buttons", "eggs", "flowers", "toy cars", "beads", "oranges"]
    static let containers = ["boxes", "bags", "baskets", "packs", "jars", "crates"]
}
