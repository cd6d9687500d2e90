/*
 * pdf.c - placeholder (issue 4).
 */
typedef int enpi_pdf_placeholder_t;
