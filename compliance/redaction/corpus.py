"""Builds the labelled evaluation corpus (`data/corpus.jsonl`).

Positive sentences are what a clinician types: identifiers with valid check
digits in every format variant, phones, e-mails, addresses, names with and
without context. Negative sentences are clean clinical text full of dosages,
prices, procedure dates, lot numbers and product names. Every identifier is
generated here (nothing real), with a fixed seed so the file is reproducible:

    python -m compliance.redaction.corpus        # rewrites data/corpus.jsonl

Names come from the shipped census lexicons (the most frequent given names
and surnames) and from OUTSIDE them: a few spellings typed by hand and names
synthesised from syllables that the lexicons do not hold ("held out"), so
the name figures measure the capitalisation and context rules and not only
the lists.
Hand-written sentences mark entities inline as [[TYPE|value]].
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from pathlib import Path

from . import checksums, lexicon

CORPUS_PATH = lexicon.DATA_DIR / "corpus.jsonl"
SEED = 20250312

# --- name material -------------------------------------------------------------
# Names absent from the shipped lists: only found through context words.
HELD_OUT_FIRST = [
    "Kauane",
    "Thayná",
    "Wemerson",
    "Dheyson",
    "Ravena",
    "Kétlin",
    "Jucileide",
    "Edleuza",
    "Rosicleide",
    "Gleidson",
    "Weslley",
    "Taynara",
    "Lohane",
    "Kemilly",
    "Maycon",
    "Cleidiane",
    "Valdirene",
    "Elioenai",
    "Ozéias",
    "Uelinton",
    "Josenilda",
    "Marivalda",
    "Raylan",
    "Deuzimar",
]
HELD_OUT_SURNAMES = [
    "Zambon",
    "Tessaro",
    "Piovesan",
    "Casagrande",
    "Dalmolin",
    "Scopel",
    "Bortolotto",
    "Vendramini",
    "Kloster",
    "Wachholz",
    "Ungaretti",
    "Trevisol",
    "Hüffner",
    "Nakashima",
    "Okubo",
    "Sakamoto",
    "Abdalla",
    "Yunes",
    "Lorenzetti",
    "Boaventura",
    "Sotero",
    "Fenili",
]
_PARTICLES = ["da", "de", "dos", "do", "das"]
# Syllables for synthesised names in the style of names registered after 1980
# (Julianderson, Tatiany, Kemilly); only combinations absent from the lexicons are used.
_GIVEN_HEADS = [
    "Jucil",
    "Wem",
    "Dhey",
    "Kau",
    "Rayl",
    "Gleid",
    "Cleid",
    "Josen",
    "Mariv",
    "Deuz",
    "Wald",
    "Ednal",
    "Lucin",
    "Rosil",
    "Francil",
    "Edil",
    "Valdi",
    "Maric",
    "Tayl",
    "Kell",
]
_GIVEN_TAILS = [
    "anderson",
    "eison",
    "ielly",
    "ayne",
    "ilene",
    "enice",
    "ísia",
    "ânia",
    "ilson",
    "ervan",
    "uelma",
    "ardo",
    "ielen",
    "ycon",
    "ézio",
]
_SURNAME_HEADS = [
    "Zamb",
    "Tess",
    "Piov",
    "Dalm",
    "Scop",
    "Bort",
    "Vendr",
    "Klost",
    "Wachh",
    "Unger",
    "Trev",
    "Fen",
    "Lorenz",
    "Casagr",
    "Bragh",
    "Morett",
    "Pellizz",
    "Zanard",
]
_SURNAME_TAILS = ["olin", "aro", "esan", "otto", "ini", "etti", "olli", "ari", "ucci", "ener"]


def _synthesised(heads: list[str], tails: list[str]) -> list[str]:
    """Plausible names that no shipped lexicon holds (checked, so the corpus stays honest)."""
    names = []
    for head in heads:
        for tail in tails:
            name = head + tail
            if not lexicon.flags_of(name) & (lexicon.NAME_FLAGS | lexicon.STOP):
                names.append(name)
    return names


STREETS = [
    "Augusta",
    "Oscar Freire",
    "Haddock Lobo",
    "Doutor Arnaldo",
    "Padre Anchieta",
    "Brigadeiro Faria Lima",
    "25 de Março",
    "Sete de Setembro",
    "XV de Novembro",
    "das Flores",
    "dos Andradas",
    "Barão de Itapetininga",
    "Bela Cintra",
    "Pamplona",
    "Teodoro Sampaio",
    "Cardeal Arcoverde",
    "Marquês de São Vicente",
    "Visconde de Pirajá",
    "Getúlio Vargas",
    "Amazonas",
    "Tiradentes",
    "Santos Dumont",
    "Dom Pedro II",
    "Rui Barbosa",
    "Afonso Pena",
    "João Pessoa",
    "Goiás",
    "Coronel Oscar Porto",
    "Ibirapuera",
    "Nove de Julho",
]
STREET_TYPES = ["Rua", "Rua", "Av.", "Avenida", "Travessa", "Alameda", "Praça", "R.", "rua"]
COMPLEMENTS = [
    "",
    "",
    ", apto 52",
    ", apto. 1203",
    ", bloco B, apto 101",
    ", casa 2",
    ", sala 304",
    " - fundos",
    ", conj. 45",
    ", 3º andar",
]
DOMAINS = [
    "gmail.com",
    "hotmail.com",
    "yahoo.com.br",
    "outlook.com",
    "uol.com.br",
    "bol.com.br",
    "icloud.com",
    "clinicabella.com.br",
    "terra.com.br",
]
DDD = ["11", "21", "31", "41", "51", "61", "71", "81", "85", "19", "27", "47", "62", "92", "98"]
MONTHS = [
    "janeiro",
    "fevereiro",
    "março",
    "abril",
    "maio",
    "junho",
    "julho",
    "agosto",
    "setembro",
    "outubro",
    "novembro",
    "dezembro",
]


# How far down the frequency-sorted lexicons the corpus draws listed names.
LISTED_GIVEN = 3000
LISTED_SURNAMES = 2000


def _listed_first_names() -> list[str]:
    """Frequent given names that are only names (Maria, Kauane; not Rosa), in title case."""
    names = [n for n, _ in lexicon.given_names_by_count()[:LISTED_GIVEN]]
    return [n.title() for n in names if lexicon.flags_of(n) & lexicon.FIRST]


def _listed_surnames() -> list[str]:
    """Frequent surnames, in title case."""
    names = [n for n, _ in lexicon.surnames_by_count()[:LISTED_SURNAMES]]
    return [n.title() for n in names if lexicon.flags_of(n) & lexicon.SURNAME]


class Builder:
    """Draws values in random format variants; every call returns the rendered text."""

    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.first = _listed_first_names()
        self.surnames = _listed_surnames()
        self.held_out_first = [
            n for n in HELD_OUT_FIRST if not lexicon.flags_of(n) & lexicon.NAME_FLAGS
        ] + _synthesised(_GIVEN_HEADS, _GIVEN_TAILS)
        self.held_out_surnames = [
            n for n in HELD_OUT_SURNAMES if not lexicon.flags_of(n) & lexicon.NAME_FLAGS
        ] + _synthesised(_SURNAME_HEADS, _SURNAME_TAILS)

    def pick(self, items):
        return self.rng.choice(items)

    # names
    def full_name(self, *, held_out: float = 0.25, listed_first: bool = False) -> str:
        rng = self.rng
        if not listed_first and rng.random() < held_out:
            first = self.pick(self.held_out_first)
        else:
            first = self.pick(self.first)
            if rng.random() < 0.2:
                first += " " + self.pick(self.first)
        parts = [first]
        for _ in range(rng.choice([1, 1, 2, 2, 3])):
            if rng.random() < 0.3:
                parts.append(self.pick(_PARTICLES))
            pool = self.held_out_surnames if rng.random() < held_out else self.surnames
            parts.append(self.pick(pool))
        return " ".join(parts)

    def first_name(self) -> str:
        return self.pick(self.first)

    def unlisted_name(self) -> str:
        """A given name no lexicon holds, with a listed surname: only capitalisation and
        the neighbouring name word say it is a person."""
        return f"{self.pick(self.held_out_first)} {self.pick(self.surnames)}"

    # identifiers
    def cpf(self) -> str:
        d = checksums.generate_cpf(self.rng)
        return self.pick(
            [
                f"{d[:3]}.{d[3:6]}.{d[6:9]}-{d[9:]}",
                d,
                f"{d[:3]} {d[3:6]} {d[6:9]} {d[9:]}",
                f"{d[:9]}-{d[9:]}",
                f"{d[:3]}.{d[3:6]}.{d[6:9]}-{d[9:]}",
            ]
        )

    def cnpj(self) -> str:
        alnum = self.rng.random() < 0.5
        d = checksums.generate_cnpj(self.rng, alphanumeric=alnum)
        formatted = f"{d[:2]}.{d[2:5]}.{d[5:8]}/{d[8:12]}-{d[12:]}"
        variants = [formatted, d, formatted]
        if alnum:
            variants += [formatted.lower(), d.lower()]
        return self.pick(variants)

    def rg(self) -> str:
        digits = "".join(self.rng.choice("0123456789") for _ in range(8))
        dv = self.rng.choice("0123456789X")
        return self.pick(
            [
                f"{digits[:2]}.{digits[2:5]}.{digits[5:]}-{dv}",
                f"{digits}-{dv}",
                f"MG-{digits[:2]}.{digits[2:5]}.{digits[5:]}",
                f"{digits[1]}.{digits[2:5]}.{digits[5:]}",
                f"{digits}{dv if dv != 'X' else '7'}",
            ]
        )

    def cns(self) -> str:
        d = checksums.generate_cns(self.rng, provisional=self.rng.random() < 0.5)
        return self.pick(
            [
                f"{d[:3]} {d[3:7]} {d[7:11]} {d[11:]}",
                d,
                f"{d[:3]}.{d[3:7]}.{d[7:11]}.{d[11:]}",
                f"{d[:3]} {d[3:7]} {d[7:11]} {d[11:]}",
            ]
        )

    def pis_formatted(self) -> str:
        d = checksums.generate_pis(self.rng)
        return f"{d[:3]}.{d[3:8]}.{d[8:10]}-{d[10]}"

    def pis_any(self) -> str:
        d = checksums.generate_pis(self.rng)
        return self.pick([f"{d[:3]}.{d[3:8]}.{d[8:10]}-{d[10]}", d, f"{d[:10]}-{d[10]}"])

    def titulo(self) -> str:
        uf = self.rng.choice([1, 2, 1, 2, None, None, None])
        d = checksums.generate_titulo(self.rng, uf=uf)
        return self.pick([f"{d[:4]} {d[4:8]} {d[8:]}", d, f"{d[:4]} {d[4:8]} {d[8:10]} {d[10:]}"])

    def cnh(self) -> str:
        d = checksums.generate_cnh(self.rng)
        return self.pick([d, f"{d[:9]}-{d[9:]}", f"{d[:3]} {d[3:6]} {d[6:9]} {d[9:]}", d])

    def cep_hyphen(self) -> str:
        d = f"{self.rng.randint(1000, 99999):05d}{self.rng.randint(0, 999):03d}"
        return self.pick([f"{d[:5]}-{d[5:]}", f"{d[:2]}.{d[2:5]}-{d[5:]}"])

    def cep_any(self) -> str:
        d = f"{self.rng.randint(1000, 99999):05d}{self.rng.randint(0, 999):03d}"
        return self.pick([f"{d[:5]}-{d[5:]}", d, f"{d[:2]}.{d[2:5]}-{d[5:]}"])

    def phone(self, *, with_keyword: bool = False) -> str:
        rng = self.rng
        ddd = self.pick(DDD)
        mobile = rng.random() < 0.7
        if mobile:
            num = "9" + "".join(rng.choice("0123456789") for _ in range(8))
            a, b = num[:5], num[5:]
        else:
            num = rng.choice("2345") + "".join(rng.choice("0123456789") for _ in range(7))
            a, b = num[:4], num[4:]
        variants = [
            f"({ddd}) {a}-{b}",
            f"{ddd} {a}-{b}",
            f"{ddd}{a}{b}",
            f"+55 {ddd} {a}-{b}",
            f"+55 ({ddd}) {a}-{b}",
            f"+55{ddd}{a}{b}",
            f"({ddd}){a}-{b}",
            f"{ddd} {a} {b}",
            f"({ddd}) {a}.{b}",
            f"55 {ddd} {a} {b}",
            f"(0{ddd}) {a}-{b}",
        ]
        if mobile:
            variants += [f"{ddd} {a[0]} {a[1:]}-{b}", f"{a}-{b}"]
        if with_keyword:
            variants += [f"{a}-{b}", f"{a} {b}"]
        return self.pick(variants)

    def email(self) -> str:
        name = lexicon.fold(self.pick(self.first)).replace(" ", "")
        surname = lexicon.fold(self.pick(self.surnames + self.held_out_surnames)).replace(" ", "")
        user = self.pick(
            [
                f"{name}.{surname}",
                f"{name[0]}{surname}{self.rng.randint(1, 99)}",
                f"{name}_{surname}",
                f"{name}{self.rng.randint(1960, 2010)}",
                f"contato.{name}",
                f"{name}.{surname}.adv",
            ]
        )
        address = f"{user}@{self.pick(DOMAINS)}"
        return address.upper() if self.rng.random() < 0.05 else address

    def card(self) -> str:
        rng = self.rng
        kind = rng.choice(["visa", "visa", "master", "master2", "amex", "elo", "hiper", "diners"])
        if kind == "visa":
            d = checksums.generate_luhn(rng, "4", 16)
        elif kind == "master":
            d = checksums.generate_luhn(rng, rng.choice(["51", "52", "53", "54", "55"]), 16)
        elif kind == "master2":
            d = checksums.generate_luhn(rng, str(rng.randint(2221, 2720)), 16)
        elif kind == "amex":
            d = checksums.generate_luhn(rng, rng.choice(["34", "37"]), 15)
            return self.pick([f"{d[:4]} {d[4:10]} {d[10:]}", d, f"{d[:4]}-{d[4:10]}-{d[10:]}"])
        elif kind == "elo":
            d = checksums.generate_luhn(
                rng, rng.choice(["636368", "504175", "509048", "650031"]), 16
            )
        elif kind == "hiper":
            d = checksums.generate_luhn(rng, "606282", 16)
        else:
            d = checksums.generate_luhn(rng, rng.choice(["3056", "3600", "3852"]), 14)
            return self.pick([f"{d[:4]} {d[4:10]} {d[10:]}", d])
        return self.pick(
            [
                f"{d[:4]} {d[4:8]} {d[8:12]} {d[12:]}",
                f"{d[:4]}-{d[4:8]}-{d[8:12]}-{d[12:]}",
                d,
                f"{d[:4]} {d[4:8]} {d[8:12]} {d[12:]}",
            ]
        )

    def birth_date(self) -> str:
        rng = self.rng
        y, m, d = rng.randint(1940, 2015), rng.randint(1, 12), rng.randint(1, 28)
        return self.pick(
            [
                f"{d:02d}/{m:02d}/{y}",
                f"{d:02d}-{m:02d}-{y}",
                f"{d:02d}.{m:02d}.{y}",
                f"{d:02d}/{m:02d}/{y % 100:02d}",
                f"{d} de {MONTHS[m - 1]} de {y}",
                f"{y}-{m:02d}-{d:02d}",
                f"{d}/{m}/{y}",
                f"{d:02d}/{m:02d}/{y}",
            ]
        )

    def address(self) -> str:
        rng = self.rng
        street_type = self.pick(STREET_TYPES)
        street = self.pick(STREETS)
        number = self.pick([str(rng.randint(1, 3999)), str(rng.randint(10, 999)), "s/n"])
        sep = self.pick([", ", ", nº ", " ", ", n. ", ", número "])
        if number == "s/n":
            sep = ", "
        return f"{street_type} {street}{sep}{number}{self.pick(COMPLEMENTS)}"

    def mrn(self) -> str:
        rng = self.rng
        return self.pick(
            [
                str(rng.randint(10000, 999999)),
                f"{rng.randint(2015, 2025)}-{rng.randint(1, 99999):05d}",
                f"AB-{rng.randint(1000, 99999)}",
                f"HC{rng.randint(100000, 999999)}",
                f"{rng.randint(100, 999)}.{rng.randint(100, 999)}",
            ]
        )


# --- positive templates ----------------------------------------------------------
# Slots: {TYPE:variant}. NOME variants: ctx (after a context word; may be held out),
# listed (context-free: starts with a listed first name), first (listed first name alone),
# caps (ALL CAPS after a label), lower (lower case after a context word).
POSITIVE_TEMPLATES = [
    "Paciente {NOME:ctx}, CPF {CPF}, retorna para revisão da toxina botulínica.",
    "CPF da paciente: {CPF}. Aplicado 20 U de Dysport em glabela.",
    "{NOME:listed} veio hoje, CPF {CPF}, queixa de assimetria após preenchimento labial.",
    "Segue o CPF {CPF} e o telefone {TELEFONE:kw} da cliente para emissão da nota.",
    "Confere o CPF {CPF}? A paciente {NOME:ctx} disse que mudou.",
    "Documento {CPF} cadastrado no sistema para a Sra. {NOME:ctx}.",
    "CNPJ da clínica parceira: {CNPJ}, faturar o procedimento para ela.",
    "Nota fiscal emitida para o CNPJ {CNPJ} referente à sessão de laser.",
    "A empresa da paciente ({CNPJ}) vai reembolsar o Ultraformer.",
    "RG {RG} e CPF {CPF} da responsável {NOME:ctx} conferidos na recepção.",
    "Identidade nº {RG}, emitida pela SSP, anexada ao termo de consentimento.",
    "RG da mãe: {RG}; a filha {NOME:ctx} tem 16 anos e veio acompanhada.",
    "Cartão SUS {CNS} da paciente para encaminhamento à dermatologia.",
    "CNS {CNS} conferido; paciente {NOME:ctx} sem alergias conhecidas.",
    "Número do cartão nacional de saúde: {CNS}.",
    "{CNS} é o cartão do SUS que ela trouxe hoje.",
    "PIS {PIS:any} informado para o cadastro do convênio.",
    "NIT {PIS:any} da paciente, solicitado pelo RH da empresa.",
    "PIS/PASEP: {PIS:formatted}",
    "Inscrição {PIS:formatted} no cadastro, atualizar ficha.",
    "Título de eleitor {TITULO} apresentado como documento com foto.",
    "Trouxe o título {TITULO} porque esqueceu o RG.",
    "Título eleitoral: {TITULO}; endereço atualizado.",
    "CNH {CNH} apresentada na recepção, paciente {NOME:ctx}.",
    "Carteira de motorista nº {CNH}, validade 2031.",
    "Documento: CNH {CNH} (registro), categoria B.",
    "Mora na {ENDERECO}, CEP {CEP:any}, perto da clínica.",
    "Endereço para envio do kit pós-procedimento: {ENDERECO}, CEP {CEP:any}.",
    "Endereço: {ENDERECO} - São Paulo/SP - {CEP:hyphen}.",
    "A paciente reside na {ENDERECO}.",
    "Enviar o protetor solar para {ENDERECO}, {CEP:hyphen}.",
    "Telefone da paciente: {TELEFONE:kw}. Ligar para confirmar o retorno.",
    "Contato {TELEFONE:kw} (WhatsApp) para envio das fotos do antes e depois.",
    "Ela pediu retorno no {TELEFONE:free} depois das 18h.",
    "Tel. {TELEFONE:kw} / cel. {TELEFONE:kw}",
    "Ligar para a mãe dela no {TELEFONE:free} se houver intercorrência.",
    "Se tiver edema, mandar foto para {TELEFONE:free}.",
    "E-mail da paciente: {EMAIL}, enviar orientações pós-peeling.",
    "Mandei o termo para {EMAIL} e ela assinou.",
    "{NOME:listed} ({EMAIL}) pediu orçamento de bioestimulador.",
    "Pagamento no cartão {CARTAO}, 3 parcelas de R$ 800,00.",
    "Cartão de crédito {CARTAO} recusado, tentar novamente.",
    "Ela passou o cartão {CARTAO} para o sinal de 30%.",
    "Paciente nascida em {DATA_NASCIMENTO}, gestante de 12 semanas, contraindicada toxina.",
    "DN: {DATA_NASCIMENTO}. Sem comorbidades.",
    "Data de nascimento: {DATA_NASCIMENTO}; alergia a dipirona.",
    "Nasc. {DATA_NASCIMENTO} - fototipo III.",
    "O filho nasceu em {DATA_NASCIMENTO} e ela ainda amamenta.",
    "Data nasc.: {DATA_NASCIMENTO}",
    "Prontuário {PRONTUARIO}: evolução sem intercorrências após o microagulhamento.",
    "Pront. {PRONTUARIO} - paciente refere ardor leve.",
    "Registro {PRONTUARIO}, revisar fotos da sessão anterior.",
    "MRN {PRONTUARIO} no sistema do hospital.",
    "Prontuário nº {PRONTUARIO} atualizado com a prescrição.",
    "Paciente {NOME:ctx}, 45 anos, refere melhora do melasma.",
    "A paciente {NOME:ctx} relata dor leve no local da aplicação.",
    "Mãe: {NOME:ctx}; pai: {NOME:ctx}.",
    "Responsável legal: {NOME:ctx}.",
    "Filha da Sra. {NOME:ctx} agendou limpeza de pele.",
    "A Dra. {NOME:ctx} vai fazer o retoque na sexta.",
    "Falei com o Dr. {NOME:ctx} sobre a hialuronidase.",
    "Cliente {NOME:ctx} quer remarcar o laser.",
    "Esposa do Sr. {NOME:ctx}, mesma ficha.",
    "O marido, {NOME:ctx}, vai acompanhar no procedimento.",
    "{NOME:listed} ligou perguntando sobre o resultado do peeling.",
    "{NOME:listed} retornou com edema palpebral leve.",
    "Agendei {NOME:listed} para quinta às 14h.",
    "Hoje atendi {NOME:listed} e {NOME:listed}, ambas para toxina.",
    "Orientei {NOME:listed} a evitar sol por 7 dias.",
    "A {NOME:first} fez bioestimulador ontem e está com nódulo.",
    "{NOME:first} pediu para adiantar a sessão.",
    "{NOME:unlisted} ligou para remarcar a toxina.",
    "Hoje atendi {NOME:unlisted}, retorno em 15 dias.",
    "Assinado: {NOME:caps}",
    "Conversei com o {NOME:first} sobre o tratamento da calvície.",
    "PACIENTE: {NOME:caps}",
    "NOME: {NOME:caps} - CPF: {CPF}",
    "paciente {NOME:lower} voltou com hematoma",
    "Nome completo: {NOME:ctx}",
    "Dona {NOME:ctx} ligou para remarcar.",
    "Paciente {NOME:ctx}, CNS {CNS}, nascida em {DATA_NASCIMENTO}, tel. {TELEFONE:kw}.",
    "{NOME:listed}, CPF {CPF}, {ENDERECO}, e-mail {EMAIL}.",
    "Dados da cliente: {NOME:listed} - {TELEFONE:free} - {EMAIL}.",
    "Acompanhante {NOME:ctx} (irmã), RG {RG}.",
    "Sr. {NOME:ctx}, prontuário {PRONTUARIO}, retorno em 30 dias.",
    "Cadastro: {NOME:listed}; DN {DATA_NASCIMENTO}; CPF {CPF}; CEP {CEP:any}.",
    "Habilitação {CNH} anexada ao cadastro do convênio.",
    "Registro da CNH: {CNH}; RG {RG}.",
    "Eleitor, título {TITULO}, zona 251, seção 88.",
    "Documento apresentado: {TITULO} (título eleitoral).",
    "Cartão {CARTAO}, validade 09/29, em nome da paciente.",
    "Pagou com o crédito {CARTAO} em 2 vezes.",
    "{CARTAO} foi o cartão usado no sinal.",
    "Empresa: {CNPJ} - pagamento por boleto.",
    "CNPJ {CNPJ} / inscrição estadual isenta.",
    "NIS {PIS:any} para o cadastro social.",
    "PASEP {PIS:any} (servidora pública).",
    "Cartão do SUS: {CNS}, UBS de referência.",
    "CNS: {CNS}",
    "{CPF} - {NOME:listed}",
    "Ela mandou o e-mail {EMAIL} e o celular {TELEFONE:kw}.",
]

CTX_ONLY_TYPES = {"ctx", "caps", "lower"}


def _render_slot(b: Builder, entity: str, variant: str | None) -> str:
    if entity == "NOME":
        if variant == "ctx":
            return b.full_name()
        if variant == "listed":
            return b.full_name(listed_first=True, held_out=0.2)
        if variant == "first":
            return b.first_name()
        if variant == "unlisted":
            return b.unlisted_name()
        if variant == "caps":
            return b.full_name(listed_first=True, held_out=0.0).upper()
        if variant == "lower":
            first = b.first_name()
            sur = b.pick(
                [s for s in b.surnames if not lexicon.flags_of(s) & lexicon.SURNAME_COMMON_WORD]
            )
            return f"{first} {sur}".lower()
    simple: dict[str, Callable[[], str]] = {
        "CPF": b.cpf,
        "CNPJ": b.cnpj,
        "RG": b.rg,
        "CNS": b.cns,
        "TITULO": b.titulo,
        "CNH": b.cnh,
        "EMAIL": b.email,
        "CARTAO": b.card,
        "DATA_NASCIMENTO": b.birth_date,
        "ENDERECO": b.address,
        "PRONTUARIO": b.mrn,
    }
    if entity in simple:
        return simple[entity]()
    if entity == "PIS":
        return b.pis_formatted() if variant == "formatted" else b.pis_any()
    if entity == "CEP":
        return b.cep_hyphen() if variant == "hyphen" else b.cep_any()
    if entity == "TELEFONE":
        return b.phone(with_keyword=variant == "kw")
    raise ValueError(f"unknown slot {entity}:{variant}")


_SLOT_RE = re.compile(r"\{([A-Z_]+)(?::(\w+))?\}")


def render_template(b: Builder, template: str) -> dict:
    """Fill a template; returns {text, entities[type,start,end,value]}."""
    # A lower-case street type or name after a sentence end reads oddly but is kept:
    # clinicians type like that.
    return _fill_marks(template, _SLOT_RE, lambda m: _render_slot(b, m.group(1), m.group(2)))


def _fill_marks(source: str, marks: re.Pattern, value_of: Callable[[re.Match], str]) -> dict:
    """Replace each match of `marks` (group 1: the entity type) by `value_of(match)`;
    returns {text, entities[type,start,end,value]} with offsets into the filled text."""
    parts: list[str] = []
    entities = []
    position = 0
    length = 0
    for m in marks.finditer(source):
        literal = source[position : m.start()]
        parts.append(literal)
        length += len(literal)
        value = value_of(m)
        entities.append(
            {"type": m.group(1), "start": length, "end": length + len(value), "value": value}
        )
        parts.append(value)
        length += len(value)
        position = m.end()
    parts.append(source[position:])
    return {"text": "".join(parts), "entities": entities}


# --- hand-written positives ([[TYPE|value]] marks an entity) ------------------------
HAND_WRITTEN_POSITIVES = [
    "Oi, a [[NOME|Kauane Zambon]] (paciente nova) quer saber se pode fazer Botox grávida.",
    "A paciente [[NOME|Thayná]] chegou com a mãe, [[NOME|Edleuza Piovesan]].",
    "Boa tarde! Sou a enfermeira [[NOME|Jucileide]], a Sra. [[NOME|Marivalda Tessaro]] ligou.",
    "Paciente [[NOME|Wemerson Dalmolin]], 32 anos, quer fazer harmonização facial.",
    "[[NOME|Maria Aparecida dos Santos]] tem alergia a lidocaína, anotar no prontuário "
    "[[PRONTUARIO|88231]].",
    "A filha, [[NOME|Lohane]], vai trazer os exames na segunda.",
    "O Dr. [[NOME|Bortolotto]] indicou o bioestimulador para a cliente.",
    "Conversei com o responsável, Sr. [[NOME|Deuzimar Scopel]], por telefone.",
    "Chama-se [[NOME|Ravena Casagrande]] e tem 27 anos.",
    "A paciente se chama [[NOME|Kemilly Sotero]], primeira consulta.",
    "[[NOME|José Carlos Pereira]] e a esposa [[NOME|Raimunda Pereira]] vieram juntos.",
    "Liguei para [[NOME|Ana Paula]] no [[TELEFONE|(21) 99876-5432]], sem resposta.",
    "Mandar foto para [[NOME|Fernanda Lima]]: [[EMAIL|fernanda.lima82@gmail.com]].",
    "O telefone fixo dela é [[TELEFONE|(31) 3274-5566]].",
    "Whats: [[TELEFONE|+55 11 91234-5678]]",
    "Celular [[TELEFONE|11 9 8123-4567]] (recado com a irmã).",
    "[[NOME|Beatriz Souza]] nasceu em [[DATA_NASCIMENTO|03/07/1992]] e já fez rinomodelação.",
    "Data de nascimento [[DATA_NASCIMENTO|15 de agosto de 1978]], menopausa há 2 anos.",
    "DN [[DATA_NASCIMENTO|1986-11-02]]",
    "Mora na [[ENDERECO|Rua das Acácias, 45, apto 12]] em Campinas.",
    "Endereço: [[ENDERECO|Av. Brasil, 1500, bloco C]], [[CEP|20040-002]].",
    "Residente na [[ENDERECO|Alameda Santos, nº 200]].",
    "A clínica manda o kit para a [[ENDERECO|Rodovia SP-340, km 128]].",
    "CPF [[CPF|529.982.247-25]], RG [[RG|23.456.789-X]], paciente [[NOME|Cleidiane Yunes]].",
    "Faturar para [[CNPJ|12.ABC.345/01DE-35]] (empresa do marido).",
    "CNPJ novo alfanumérico: [[CNPJ|12abc34501de35]].",
    "Por favor, nome da paciente é [[NOME|Josenilda Fenili]] e não [[NOME|Josefa]].",
    "[[NOME|Rosa Silva]] perguntou sobre o óleo de Rosa Mosqueta para a cicatriz.",
    "Sra. [[NOME|Glória Menezes]] retorna em março.",
    "Paciente: [[NOME|MARIA DAS DORES FERREIRA]], CPF: [[CPF|111.444.777-35]]",
    "A acompanhante, [[NOME|Valdirene]], é a tia da paciente.",
    "O pai da menina ([[NOME|Maycon Abdalla]]) assinou o termo.",
    "Atendimento da cliente [[NOME|Taynara]] às 15h.",
    "A avó, dona [[NOME|Conceição]], também quer fazer o procedimento.",
    "Indicação da amiga [[NOME|Raylan Okubo]].",
    "[[NOME|Marcos Vinícius]] fez a terceira sessão de laser para pelos.",
    "Falar com [[NOME|Patrícia Gonçalves]] sobre o orçamento de R$ 3.200,00.",
    "Cliente [[NOME|Gleidson Nakashima]], [[TELEFONE|(11) 3456-7890]], "
    "[[EMAIL|gleidson.n@uol.com.br]].",
    "Meu nome é [[NOME|Elioenai Trevisol]], sou a secretária da clínica.",
    "cpf [[CPF|52998224725]] da paciente",
    "O CPF é [[CPF|529.982.247-25]].",
    "Empresa [[CNPJ|11.222.333/0001-81]] paga.",
    "meu celular é [[TELEFONE|11 98765 4321]]",
    "liga no [[TELEFONE|(11)3456-7890]]",
    "fone: [[TELEFONE|21 2345-6789]]",
    "telefone [[TELEFONE|987654321]]",
    "tel [[TELEFONE|3456-7890]]",
    "Contato: [[TELEFONE|11987654321]]",
    "email: [[EMAIL|JOAO.SILVA@EMPRESA.COM.BR]]",
    "manda pro [[EMAIL|maria_souza-88@gmail.com]]",
    "cartão [[CARTAO|5555 5555 5555 4444]] validade 12/27",
    "nasceu dia [[DATA_NASCIMENTO|12 de março de 1985]]",
    "d.n.: [[DATA_NASCIMENTO|01/01/2000]]",
    "dt nasc [[DATA_NASCIMENTO|07/07/1977]]",
    "[[ENDERECO|Rua Padre João Manuel, 123, apto 4]]",
    "[[ENDERECO|Rua 7 de Setembro, 88]]",
    "mora na [[ENDERECO|rua das Palmeiras 45]]",
    "cep [[CEP|04538132]]",
    "identidade [[RG|1.234.567]] SSP/MG",
    "cartão sus [[CNS|700000000000005]]",
    "título de eleitor [[TITULO|1023 8501 0671]]",
    "nº do prontuário [[PRONTUARIO|45.678]]",
    "registro hospitalar [[PRONTUARIO|2024/1234]]",
    "O marido, [[NOME|José Antônio]], ligou.",
    "Ligou a D. [[NOME|Rosa]], mãe da paciente.",
    "Paciente [[NOME|Ana Clara de Souza e Silva]], 34a.",
    "Atendi hoje a sra. [[NOME|maria josé]]",
    "[[NOME|JULIANA PEREIRA DOS SANTOS]] - 34 anos",
    "A [[NOME|Bia]] e o [[NOME|Zé]] vieram juntos",
    "Paciente [[NOME|Francisca das Chagas]], 70 anos",
    "Dr. [[NOME|João Paulo Albuquerque]] indicou.",
    "Oi Dra, a [[NOME|Luana Fernandes]] vai atrasar",
    "Paciente: [[NOME|Kauane Zambon]]",
    "Responsável: [[NOME|Deuzimar Scopel]]",
]

_MARK_RE = re.compile(r"\[\[([A-Z_]+)\|(.+?)\]\]")


def parse_marked(marked: str) -> dict:
    """Turn '... [[NOME|Ana]] ...' into {text, entities}."""
    return _fill_marks(marked, _MARK_RE, lambda m: m.group(2))


# --- negatives -----------------------------------------------------------------
HAND_WRITTEN_NEGATIVES = [
    "Aplicado 50 U de Botox em glabela e fronte em 12/03/2025.",
    "Paciente retorna após 15 dias para avaliação do resultado.",
    "Prescrevo Dipirona 500 mg de 6/6h se dor, por no máximo 3 dias.",
    "Ácido Hialurônico 1 ml aplicado em sulco nasogeniano bilateral, lote 23A145.",
    "Valor do procedimento: R$ 1.500,00 em até 3x no cartão.",
    "Toxina botulínica 100 U diluída em 2,5 ml de soro fisiológico.",
    "Orientada a não deitar por 4 horas e evitar atividade física por 24 horas.",
    "Sessão 2 de 4 de microagulhamento realizada em 05/02/2025.",
    "Retorno agendado para segunda-feira, 17/03/2025, às 14h30.",
    "Aplicado 2,5 mg de enzima em nódulo no lábio superior.",
    "Lote 2310456, validade 08/2026, fabricante Allergan.",
    "Sculptra 1 frasco diluído em 8 ml, aplicado em terço médio e inferior.",
    "Peeling de ácido retinoico 5% realizado, orientada fotoproteção FPS 50.",
    "Laser Fotona 4D, sessão 1 de 3, sem intercorrências.",
    "Ultraformer MPT 400 linhas em face e 200 linhas em pescoço.",
    "Orçamento: Botox R$ 1.200,00, preenchimento labial R$ 1.800,00, total R$ 3.000,00.",
    "Desconto de 10% para pagamento no PIX.",
    "Paciente nega alergias, nega uso de anticoagulantes.",
    "HDA: queixa de rugas dinâmicas em fronte há 2 anos.",
    "PA 120x80 mmHg, FC 72 bpm, peso 68 kg, altura 1,65 m.",
    "IMC 24,5; sem comorbidades; tabagista 10 cigarros por dia.",
    "Prescrito Cefalexina 500 mg de 6/6h por 7 dias.",
    "Aciclovir 400 mg 3x ao dia por 5 dias antes do laser.",
    "Restylane Kysse 1 ml em lábios, técnica com cânula 25G.",
    "Radiesse 1,5 ml diluído 1:1 com lidocaína 2%.",
    "Hialuronidase 150 UTR aplicada em região periorbital.",
    "Fios de PDO: 10 fios lisos 29G em cada hemiface.",
    "Criolipólise em abdome inferior, 2 aplicações de 35 minutos.",
    "Retorno em março para reavaliação do melasma.",
    "Segunda sessão de luz pulsada marcada para abril.",
    "Usar Vitamina C 20% pela manhã e Retinol 0,3% à noite.",
    "Óleo de Rosa Mosqueta na cicatriz 2x ao dia.",
    "Encaminhada ao Hospital Santa Maria para biópsia.",
    "Paciente veio de São Paulo para o procedimento.",
    "Aplicação realizada em 03/01/2025 e retoque em 18/01/2025.",
    "Dysport 300 U, diluição em 1,5 ml, 60 U em axilas.",
    "Xeomin 100 U, 24 U em glabela, 12 U em fronte, 18 U em periorbital.",
    "Foram utilizadas 3 seringas de 1 ml de Juvéderm Voluma.",
    "Entrada de R$ 500,00 e o restante em 4 parcelas de R$ 375,00.",
    "Nota fiscal 004512 emitida em 10/03/2025.",
    "Registro ANVISA 80102510045 conferido na embalagem.",
    "Produto Belotero Balance, lote B20931, validade 11/2026.",
    "Código do produto 7891234567895 na nota.",
    "Pedido 987654 enviado ao fornecedor em 02/03/2025.",
    "Protocolo 2025-00045 da ouvidoria respondido.",
    "Tratamento de 10 a 12 semanas com Minoxidil 5%.",
    "Finasterida 1 mg por dia, reavaliar em 6 meses.",
    "Isotretinoína 20 mg em dias alternados.",
    "Ozempic 0,25 mg por semana, aumentar para 0,5 mg após 4 semanas.",
    "Aplicar compressa fria por 10 minutos a cada 2 horas.",
    "Evitar maquiagem por 24 horas e sol por 7 dias.",
    "Resultado final em 30 dias; nova foto no retorno.",
    "Paciente satisfeita, sem edema, sem equimose.",
    "Presença de equimose leve em região malar esquerda.",
    "Hematoma de 2 cm no local da aplicação, orientado gelo.",
    "Sem sinais de oclusão vascular; enchimento capilar normal.",
    "CID L70.0 acne vulgar; CID L81.1 melasma.",
    "Fototipo III de Fitzpatrick, pele oleosa.",
    "Doença de Crohn controlada, em uso de mesalazina.",
    "Histórico de paralisia de Bell há 5 anos.",
    "Síndrome do ovário policístico em acompanhamento.",
    "Gestação de 12 semanas, procedimento contraindicado.",
    "Amamentando, aguardar o fim da lactação para toxina.",
    "Prescrição: Bepantol Derma 2x ao dia por 10 dias.",
    "Hirudoid gel nos hematomas 3x ao dia.",
    "Lidocaína tópica 30 minutos antes do microagulhamento.",
    "Anestesia com EMLA por 40 minutos.",
    "Agulha 30G 13 mm, 0,1 ml por ponto.",
    "Bioestimulador de colágeno, 2 sessões com intervalo de 45 dias.",
    "Harmonização facial completa: R$ 4.800,00 à vista.",
    "Retorno dia 22/04 às 9h para retoque da toxina.",
    "Sessões às terças e quintas, 16h.",
    "Tempo de procedimento: 45 minutos.",
    "Aplicadas 20 unidades em cada axila para hiperidrose.",
    "Mesoterapia capilar quinzenal, 6 sessões.",
    "Carboxiterapia em olheiras, 1 vez por semana.",
    "Drenagem linfática 10 sessões, pacote R$ 1.200,00.",
    "Protetor Episol FPS 60 cor média.",
    "Usar sabonete Cetaphil e hidratante Cicaplast.",
    "Tretinoína 0,025% à noite, iniciar 3x por semana.",
    "Ácido tranexâmico 250 mg 2x ao dia por 3 meses.",
    "Ácido glicólico 70% por 3 minutos, neutralizado.",
    "Jessner 3 camadas, frost nível 1.",
    "Ultrassom microfocado 1,5 mm e 3,0 mm em submento.",
    "Morpheus8 profundidade 2 mm em face e 3 mm em papada.",
    "Rinomodelação com 0,6 ml de ácido hialurônico.",
    "Bichectomia realizada em 2023, sem complicações.",
    "Blefaroplastia superior há 3 anos.",
    "Lipoaspiração de abdome em 2019.",
    "Paciente diabética tipo 2, HbA1c 6,8%.",
    "Hipertensa em uso de Losartana 50 mg 1x ao dia.",
    "Levotiroxina 75 mcg em jejum.",
    "Hemograma de 15/01/2025 sem alterações.",
    "Vitamina D 18 ng/ml, prescrito 50.000 UI por semana por 8 semanas.",
    "Ferritina 12 ng/ml, encaminhada ao clínico.",
    "Temperatura 36,5 °C, saturação 98%.",
    "Consulta de retorno em 90 dias.",
    "Prazo de validade do frasco aberto: 24 horas refrigerado.",
    "Estoque: 12 frascos de Botox 100 U e 8 de Dysport 500 U.",
    "Compra de 20 seringas de 1 ml de Restylane por R$ 12.000,00.",
    "Custo por unidade R$ 18,50; preço de venda R$ 35,00.",
    "Agenda de sábado cheia até as 13h.",
    "Na quarta-feira a clínica fecha às 18h.",
    "O fornecedor entrega na terça de manhã.",
    "Janeiro teve 120 procedimentos de toxina e 45 de preenchimento.",
    "Meta do mês: 200 atendimentos.",
    "Treinamento da equipe sobre intercorrências dia 12/05/2025.",
    "Reunião com o representante da Galderma na sexta.",
    "Campanha de março: 15% de desconto em bioestimuladores.",
    "Paciente com 45 anos, fototipo IV, melasma misto.",
    "Queixa principal: flacidez de pálpebra e pescoço.",
    "Ptose leve após toxina, prescrito colírio de apraclonidina 0,5%.",
    "Oclusão vascular suspeita: aplicada hialuronidase 1.500 UTR.",
    "Aspirina 100 mg e compressa morna, reavaliar em 24 horas.",
    "Necrose evitada, evolução favorável em 72 horas.",
    "Foto comparativa 30 dias após a aplicação.",
    "Termo de consentimento assinado em 12/03/2025.",
    "Reação alérgica leve, prescrito Loratadina 10 mg por 5 dias.",
    "Dexametasona 4 mg dose única.",
    "Prednisolona 20 mg por 3 dias.",
    "Amoxicilina com clavulanato 875 mg de 12/12h por 7 dias.",
    "Mupirocina pomada 3x ao dia na lesão.",
    "Fluconazol 150 mg dose única.",
    "Retinol 1% Principia à noite, 3x na semana.",
    "Pele sensível, evitar ácidos por 15 dias.",
    "Paciente refere ardor leve por 2 horas após o peeling.",
    "Edema palpebral bilateral, melhora com gelo.",
    "Aplicação de 4 U por ponto em 5 pontos na glabela.",
    "Dose total de 64 U em terço superior.",
    "Diluição de 100 U em 2 ml: 5 U por 0,1 ml.",
    "Avaliar retoque com 10 U adicionais em 15 dias.",
    "Próximo lote chega em 20/03/2025.",
    "Lote 2025A1B2 com validade 12/2026 separado.",
    "LOT 1234-5678 anotado na ficha de aplicação.",
    "Fabricação 01/2025, validade 01/2027.",
    "Série 4512-877 do equipamento de laser em manutenção.",
    "Manutenção preventiva do Ultraformer agendada para 15/04.",
    "Horário: 8h às 18h de segunda a sexta.",
    "Intervalo entre sessões de 21 a 28 dias.",
    "Sessões de 30 minutos, 1 vez por semana, por 8 semanas.",
    "Paciente pesa 72,4 kg e mede 1,70 m.",
    "Aplicado 0,5 ml em cada malar e 0,3 ml no mento.",
    "Preço promocional de R$ 990,00 até 31/03/2025.",
    "Parcelamento em até 10x de R$ 150,00.",
    "Taxa da maquininha de 3,5% no crédito.",
    "Pagamento de R$ 2.450,90 confirmado.",
    "Glicemia de jejum 98 mg/dl.",
    "Dor 3/10 na escala visual analógica.",
    "EVA 2 no retorno, sem queixas.",
    "Sem febre, sem secreção, ferida limpa.",
    "Curativo com gaze e micropore, trocar em 24 horas.",
    "Retirada de pontos em 7 dias.",
    "Cicatrização adequada na revisão de 14 dias.",
    "Paciente em uso de isotretinoína há 6 meses, suspender laser.",
    "Microagulhamento com drug delivery de vitamina C.",
    "Skinbooster Profhilo 2 ml, 5 pontos por lado.",
    "Intradermoterapia com 2 ml de ativos para gordura localizada.",
    "Peeling químico superficial, 3 sessões com intervalo de 15 dias.",
    "Alopecia androgenética grau II de Ludwig.",
    "Calvície estágio III de Norwood.",
    "Fórmula manipulada: minoxidil 5%, 60 ml, aplicar 1 ml à noite.",
    "Produto entregue pela farmácia de manipulação no dia 10.",
    "O Botox chegou hoje, 10 frascos, conferidos.",
    "Reposição de estoque: 5 caixas de agulhas 30G e 3 de 27G.",
    "Temperatura da geladeira 4 °C conferida às 8h.",
    "Descarte de perfurocortantes na caixa amarela.",
    "Agendar retorno para depois do Carnaval.",
    "Feriado de Tiradentes: clínica fechada.",
    "Retorno em 2 semanas, antes do Natal.",
    "Clínica fechada de 24/12 a 02/01.",
    "Relatório de fevereiro: 86 atendimentos, ticket médio R$ 1.340,00.",
    "A recepção confirma os agendamentos por mensagem um dia antes.",
    "Usar luvas estéreis e campo fenestrado.",
    "Assepsia com clorexidina alcoólica 0,5%.",
    "Marcação dos pontos com lápis branco.",
    "Foto padronizada em 5 posições.",
    "Registro fotográfico realizado antes e depois.",
    "Ficha de anamnese preenchida e assinada.",
    "Aplicado em 12/03/2025 às 10h, lote 23A145, 2 frascos.",
    "Última aplicação em 02/12/2024, intervalo de 3 meses.",
    "Protocolo de 3 sessões de Lavieen com intervalo de 30 dias.",
    "Infecção descartada, prescrito apenas Bepantol.",
    "Paciente com herpes labial recorrente, profilaxia com aciclovir.",
    "Vitiligo estável há 2 anos, sem lesões novas.",
    "Rosácea subtipo 2, evitar calor e álcool.",
    "Dermatite de contato após uso de ácido, suspenso por 7 dias.",
    # Label-like lines and capitalised words after context words
    "Mãe: Hipotireoidismo; Pai: Câncer de Próstata; Irmã: Diabetes Tipo 2.",
    "Esposa Grávida de 8 meses, paciente quer fazer botox antes do parto.",
    "Paciente Masculino, 45 anos, Fototipo III.",
    "Cliente VIP, pagamento via PIX de R$ 2.000,00.",
    "Paciente: Retorno pós 15 dias.",
    "Paciente Diabética e Hipertensa, em uso de Metformina 850 mg.",
    "Filho: Asma. Filha: Rinite Alérgica.",
    "Mora em Mariana, MG, e vem de carro.",
    "Aplicação em Março, retorno em Abril, revisão em Maio.",
    "Valor: R$ 1.234.567,89 no total do ano.",
    "Glabela 20 U, Fronte 10 U, Pés de galinha 12 U de cada lado.",
    "O Dr. responsável técnico assina o laudo.",
    "Marca: Galderma; produto: Restylane Skinboosters Vital Light.",
    "Usar Episol Color FPS 70 e reaplicar a cada 2 horas.",
    "Consulta às 10:30 do dia 15/05/2025; sala 3.",
    "Foram 3 sessões: 10/01, 10/02 e 10/03 de 2025.",
    "Medidas: cintura 78 cm, quadril 102 cm, braço 31 cm.",
    "Código de barras 7 891234 567895 do produto.",
    "ANVISA 1.0298.0118.001-1 registrado.",
    "Nota 4/5 na pesquisa de satisfação.",
    "Versão 2.10.3 do sistema de agendamento.",
    "Paciente relata que a mãe teve Vitiligo.",
    "Retorno na Sexta, 14h, com a esteticista.",
    "Ligar para a recepção da unidade Jardins.",
    "A paciente Gestante não pode usar ácido retinoico.",
    "Cliente Nova, veio por indicação do Instagram.",
    "Sra. de 60 anos, fototipo II, rugas estáticas.",
    "Paciente idosa, Hipertensa, usa Losartana.",
    "Dose máxima de lidocaína 7 mg/kg com vasoconstritor.",
    "Pagamento: 2 x R$ 1.250,00 no cartão de crédito.",
    "Aplicado 1 ml de Rennova Elleva em cada lado.",
    "Boa tarde, Dra.! Segue a evolução da paciente.",
    "Tudo certo com a aplicação de ontem, Doutora.",
    "Hospital Sírio-Libanês e Hospital Albert Einstein são referências.",
    "Na Avenida principal há estacionamento.",
    "Paciente de São José dos Campos.",
    "Estudo de Carruthers sobre toxina em glabela.",
    "Classificação de Glogau tipo III.",
    "Paciente com 2 filhos, o mais novo com 3 anos.",
    "CPF não informado pela paciente.",
    "O número do lote é 2309871-5.",
    "Protocolo interno 11/2024 de higienização.",
    "Prescrição: Dermomax 30 g, aplicar 1 hora antes.",
    "Paciente nascida no interior de Minas.",
    "Data de nascimento não informada.",
    "Aniversário da clínica dia 10/10.",
    "PACIENTE RETORNA PARA AVALIAÇÃO. APLICADO BOTOX 50U EM GLABELA. LOTE 23A145.",
    "Paciente usa Yasmin há 2 anos.",
    "EM USO DE ROACUTAN 20MG.",
    "Sem queixas. Orientada. Liberada.",
    "Queixa: Rugas, Manchas e Flacidez.",
    "Plano: Botox + Preenchimento + Bioestimulador.",
    "Produtos: Vichy Mineral 89, La Roche-Posay Effaclar, Avène Cicalfate.",
    "Atendimento na unidade Moema e Pinheiros.",
    "Segundo a literatura, a toxina dura 4 meses.",
    "Hoje é Sexta-Feira Santa, clínica fecha às 12h.",
    "Semana de 10/03 a 14/03: 45 atendimentos.",
    "Meta de faturamento R$ 150.000,00.",
    "Telefone não atende, tentar amanhã.",
    "Vitamina D. Suplementar 2000 UI por dia.",
]

PROCEDURES = [
    "Botox",
    "toxina botulínica",
    "preenchimento labial",
    "Sculptra",
    "Radiesse",
    "microagulhamento",
    "peeling químico",
    "laser Fotona",
    "Ultraformer",
    "bioestimulador",
    "fios de PDO",
    "skinbooster",
    "luz pulsada",
    "criolipólise",
    "Morpheus8",
    "limpeza de pele",
    "rinomodelação",
    "Profhilo",
    "Juvéderm Volbella",
    "Restylane Lyft",
    "Dysport",
    "Xeomin",
    "hialuronidase",
    "carboxiterapia",
]
DRUGS = [
    "Dipirona",
    "Paracetamol",
    "Cefalexina",
    "Amoxicilina",
    "Loratadina",
    "Prednisolona",
    "Aciclovir",
    "Valaciclovir",
    "Ibuprofeno",
    "Nimesulida",
    "Hidroxizina",
    "Dexametasona",
    "Fexofenadina",
    "Azitromicina",
    "Doxiciclina",
    "Omeprazol",
]
REGIONS = [
    "glabela",
    "fronte",
    "periorbital",
    "malar",
    "mento",
    "mandíbula",
    "lábio superior",
    "sulco nasogeniano",
    "pescoço",
    "colo",
    "axilas",
    "abdome",
    "olheiras",
    "têmporas",
]
WEEKDAYS = [
    "segunda",
    "terça",
    "quarta",
    "quinta",
    "sexta",
    "sábado",
    "segunda-feira",
    "sexta-feira",
    "Segunda",
    "Sexta",
]
NEGATIVE_TEMPLATES = [
    "{PROC} realizado em {DATE}, lote {LOT}, validade {MONTHYEAR}.",
    "Aplicadas {N} U de {TOXIN} em {REGION} em {DATE}.",
    "{DRUG} {DOSE} de {HOURS}/{HOURS}h por {DAYS} dias.",
    "Orçamento de {PROC}: {PRICE} à vista ou {PARCELS}x de {PRICE}.",
    "Sessão {N1} de {N2} de {PROC} em {DATE}, sem intercorrências.",
    "Retorno agendado para {WEEKDAY}, {SHORTDATE}, às {TIME}.",
    "{PROC}: {ML} ml em {REGION}, lote {LOT}.",
    "Aplicado em {DATE}: {PROC}, {N} U, diluição {ML} ml.",
    "Valor total {PRICE}, pago em {PARCELS} parcelas no cartão.",
    "Reavaliar {PROC} em {DAYS} dias; se edema, {DRUG} {DOSE}.",
    "{PROC} na {REGION} em {MONTH}, retoque em {DAYS} dias.",
    "Estoque de {PROC}: {N} frascos, lote {LOT}, validade {MONTHYEAR}.",
    "Paciente com {AGE} anos, {PROC} em {REGION}, resultado satisfatório.",
    "{DRUG} {DOSE}, 1 comprimido ao dia, iniciado em {DATE}.",
    "Preço de tabela {PRICE}; com desconto {PRICE}.",
]


def _negative_fill(b: Builder, template: str) -> str:
    rng = b.rng

    def date() -> str:
        return f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.choice([2024, 2025])}"

    def price() -> str:
        value = rng.choice([350, 490, 800, 990, 1200, 1500, 1800, 2450, 3200, 4800, 12000])
        cents = rng.choice(["00", "00", "90", "50"])
        return f"R$ {value:,}".replace(",", ".") + f",{cents}"

    fillers: dict[str, Callable[[], str]] = {
        "PROC": lambda: b.pick(PROCEDURES),
        "TOXIN": lambda: b.pick(["Botox", "Dysport", "Xeomin", "Botulift", "Nabota"]),
        "DRUG": lambda: b.pick(DRUGS),
        "REGION": lambda: b.pick(REGIONS),
        "DATE": date,
        "SHORTDATE": lambda: f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}",
        "MONTHYEAR": lambda: f"{rng.randint(1, 12):02d}/{rng.choice([2025, 2026, 2027])}",
        "LOT": lambda: b.pick(
            [
                f"{rng.randint(10, 99)}A{rng.randint(100, 999)}",
                f"{rng.randint(1000000, 9999999)}",
                f"B{rng.randint(10000, 99999)}",
                f"C{rng.randint(1000, 9999)}X{rng.randint(10, 99)}",
                f"{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
            ]
        ),
        "N": lambda: str(rng.choice([2, 4, 8, 10, 12, 20, 24, 40, 50, 64, 100])),
        "N1": lambda: str(rng.randint(1, 3)),
        "N2": lambda: str(rng.randint(4, 6)),
        "DOSE": lambda: b.pick(
            [
                "500 mg",
                "2,5 mg",
                "10 mg",
                "750 mg",
                "1 g",
                "20 mg",
                "4 mg",
                "0,5 mg",
                "400 mg",
                "875 mg",
            ]
        ),
        "HOURS": lambda: str(rng.choice([6, 8, 12])),
        "DAYS": lambda: str(rng.choice([3, 5, 7, 10, 14, 15, 21, 30])),
        "PRICE": price,
        "PARCELS": lambda: str(rng.randint(2, 12)),
        "WEEKDAY": lambda: b.pick(WEEKDAYS),
        "TIME": lambda: b.pick(["9h", "10h30", "14h", "14h30", "16h15", "18h"]),
        "ML": lambda: b.pick(["0,5", "1", "1,5", "2", "2,5", "0,3"]),
        "MONTH": lambda: b.pick([m.capitalize() for m in MONTHS] + MONTHS),
        "AGE": lambda: str(rng.randint(19, 72)),
    }

    def sub(m: re.Match) -> str:
        return fillers[m.group(1)]()

    text = _SLOT_RE.sub(sub, template)
    # The dose template reads "de 8/8h": repeat the same number.
    return re.sub(r"de (\d+)/\d+h", lambda m: f"de {m.group(1)}/{m.group(1)}h", text)


# --- disguised identifiers (typed to dodge a filter, or just sloppily) ---------------
# Each slot renders a valid value and then disguises it; "{CPF:typo}" breaks the
# check digit, which only counts right after the keyword. Entities carry
# "obfuscation" so that a reader of the corpus knows how the value was disguised.
OBFUSCATED_TEMPLATES = [
    "Paciente informou CPF {CPF:spaced} para o cadastro.",
    "Documento {CPF:odd} conferido na recepção.",
    "O CPF dela é {CPF:fullwidth}, confirme por favor.",
    "Cadastro com o número {CPF:zerowidth} já existe?",
    "CPF {CPF:typo} (a recepção acha que digitou errado).",
    "CNPJ da empresa: {CNPJ:odd}, faturar o pacote.",
    "Emitir nota para {CNPJ:zerowidth} referente ao laser.",
    "Cartão SUS {CNS:spaced} para o encaminhamento.",
    "CNS {CNS:typo} informado pela paciente.",
    "Encaminhar com o cartão {CNS:fullwidth} da paciente.",
    "PIS {PIS:odd} para o cadastro do funcionário.",
    "Pagamento no cartão de crédito {CARTAO:odd}, 3 parcelas.",
    "Cobrar no {CARTAO:zerowidth} aprovado ontem.",
    "Me chama no zap {TELEFONE:spaced} depois das 18h.",
    "Contato da paciente {TELEFONE:odd} para confirmar o horário.",
    "Ligar para {TELEFONE:fullwidth} e remarcar a sessão.",
    "Telefone {TELEFONE:zerowidth} (recado com a filha).",
    "CEP {CEP:spaced} para o envio do kit pós-procedimento.",
    "Mandar o orçamento para {EMAIL:spelled} ainda hoje.",
    "O e-mail dela é {EMAIL:spelled}, pode enviar as fotos?",
    "Resultado por e-mail: {EMAIL:spelled}.",
]
_ODD_SEPARATORS = ["_", "/", "\\", "|", "~", "•", " / ", " | ", " ~ "]
_ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\ufeff"]
_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_DIGIT_GROUPS = {
    "CPF": (3, 3, 3, 2),
    "CNPJ": (2, 3, 3, 4, 2),
    "CNS": (3, 4, 4, 4),
    "PIS": (3, 5, 2, 1),
    "CARTAO": (4, 4, 4, 4),
    "TELEFONE": (2, 5, 4),
    "CEP": (5, 3),
}


def _digits_of(b: Builder, entity: str) -> str:
    rng = b.rng
    if entity == "CPF":
        return checksums.generate_cpf(rng)
    if entity == "CNPJ":
        return checksums.generate_cnpj(rng)
    if entity == "CNS":
        return checksums.generate_cns(rng, provisional=rng.random() < 0.5)
    if entity == "PIS":
        return checksums.generate_pis(rng)
    if entity == "CARTAO":
        return checksums.generate_luhn(rng, rng.choice(["4", "51", "55", "636368"]), 16)
    if entity == "TELEFONE":
        return b.pick(DDD) + "9" + "".join(rng.choice("0123456789") for _ in range(8))
    if entity == "CEP":
        return f"{rng.randint(1000, 99999):05d}{rng.randint(0, 999):03d}"
    raise ValueError(f"no disguised form for {entity}")


def _grouped(digits: str, sizes: tuple[int, ...]) -> list[str]:
    groups, position = [], 0
    for size in sizes:
        groups.append(digits[position : position + size])
        position += size
    return groups


def _spelled_email(b: Builder) -> str:
    name = lexicon.fold(b.pick(b.first)).replace(" ", "")
    surname = lexicon.fold(b.pick(b.surnames)).replace(" ", "")
    user = b.pick([name, f"{name}.{surname}", f"{name}{b.rng.randint(1, 99)}"])
    domain, _, tld = b.pick(DOMAINS).partition(".")
    at, dot = b.pick([(" arroba ", " ponto "), (" at ", " dot "), (" [at] ", " [dot] "),
                      (" (arroba) ", " (ponto) "), (" @ ", " . ")])
    return user + at + domain + dot + tld.replace(".", dot)


def render_obfuscated(b: Builder, entity: str, how: str) -> str:
    """A valid (or, for `typo`, mistyped) identifier of `entity` disguised as `how` says."""
    if entity == "EMAIL":
        return _spelled_email(b)
    digits = _digits_of(b, entity)
    groups = _grouped(digits, _DIGIT_GROUPS[entity])
    if how == "spaced":  # "1 2 3 . 4 5 6 ..." or every digit apart
        spaced = [" ".join(g) for g in groups]
        return b.pick([" ".join(spaced), " . ".join(spaced[:-1]) + " - " + spaced[-1]])
    if how == "odd":
        return b.pick(_ODD_SEPARATORS).join(groups)
    if how == "fullwidth":
        return b.pick([digits, " ".join(groups)]).translate(_FULL_WIDTH)
    if how == "zerowidth":
        joined = b.pick([digits, " ".join(groups)])
        cut = b.rng.randint(1, len(joined) - 1)
        return joined[:cut] + b.pick(_ZERO_WIDTH) + joined[cut:]
    if how == "typo":
        wrong = digits[:-1] + str((int(digits[-1]) + b.rng.randint(1, 9)) % 10)
        return b.pick([" ".join(_grouped(wrong, _DIGIT_GROUPS[entity])), wrong])
    raise ValueError(f"unknown disguise {how}")


def obfuscated_records(b: Builder, *, per_template: int = 6) -> list[dict]:
    """Positive records whose identifiers are disguised (ids pos-o###-k)."""
    records = []
    for t_index, template in enumerate(OBFUSCATED_TEMPLATES):
        for k in range(per_template):
            m = _SLOT_RE.search(template)
            assert m is not None
            value = render_obfuscated(b, m.group(1), m.group(2))
            text = template[: m.start()] + value + template[m.end() :]
            entity = {"type": m.group(1), "start": m.start(), "end": m.start() + len(value),
                      "value": value, "obfuscation": m.group(2)}
            records.append({"id": f"pos-o{t_index:03d}-{k}", "kind": "positive", "text": text,
                            "entities": [entity]})
    return records


# Clean sentences whose numbers are spaced or oddly separated like a disguised
# identifier, and must come through untouched.
CLEAN_LOOKALIKES = [
    "Aplicar 2 ml 3 vezes ao dia por 7 dias.",
    "Sessões 1 | 2 | 3 concluídas, faltam 4 e 5.",
    "Dor 7 / 10 na primeira semana, 3 / 10 na segunda.",
    "PA 120 x 80 mmHg, FC 72 bpm, peso 68 kg.",
    "Diluir 100 U em 2,5 ml; aplicar 4 U / ponto em 5 pontos.",
    "Retorno 15 / 03 ou 22 / 03 às 14h30.",
    "Lote 2 3 4 5 6 7 8 9 0 1 2, validade 12 / 2027.",
    "Ácido hialurônico 1 ml ~ 1,5 ml por lado, 2 seringas.",
    "Fios de PDO: 10 • 20 • 30 unidades conforme a área.",
    "Protocolo 3_4_5 semanas entre as sessões de laser.",
    "Orçamento R$ 1 200,00 em 3 x de R$ 400,00.",
    "Glabela 20 U, frontal 10 U, periorbital 12 U (6 U / lado).",
]


def build_corpus(
    seed: int = SEED, *, per_template: int = 8, negatives_generated: int = 90
) -> list[dict]:
    """The whole corpus: positives (templated and hand-written) then negatives."""
    b = Builder(seed)
    records: list[dict] = []
    for t_index, template in enumerate(POSITIVE_TEMPLATES):
        for k in range(per_template):
            record = render_template(b, template)
            record.update(id=f"pos-t{t_index:03d}-{k}", kind="positive")
            records.append(record)
    for h_index, marked in enumerate(HAND_WRITTEN_POSITIVES):
        record = parse_marked(marked)
        record.update(id=f"pos-h{h_index:03d}", kind="positive")
        records.append(record)
    records.extend(obfuscated_records(b))
    for n_index, text in enumerate(CLEAN_LOOKALIKES):
        records.append(
            {"id": f"neg-o{n_index:03d}", "kind": "negative", "text": text, "entities": []}
        )
    for n_index, text in enumerate(HAND_WRITTEN_NEGATIVES):
        records.append(
            {"id": f"neg-h{n_index:03d}", "kind": "negative", "text": text, "entities": []}
        )
    for n_index in range(negatives_generated):
        template = NEGATIVE_TEMPLATES[n_index % len(NEGATIVE_TEMPLATES)]
        records.append(
            {
                "id": f"neg-t{n_index:03d}",
                "kind": "negative",
                "text": _negative_fill(b, template),
                "entities": [],
            }
        )
    return records


def write_corpus(path: Path = CORPUS_PATH) -> int:
    """Regenerate the corpus file; returns the number of records."""
    records = build_corpus()
    with path.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
    return len(records)


def load_corpus(path: Path = CORPUS_PATH) -> list[dict]:
    """Records of a corpus file (one JSON object per line)."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


if __name__ == "__main__":
    print(f"wrote {write_corpus()} records to {CORPUS_PATH.name}")
